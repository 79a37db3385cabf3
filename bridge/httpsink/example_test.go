package httpsink_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/httpsink"
)

func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("%s %s\nAuthorization: %s\n%s\n", r.Method, r.URL.Path, r.Header.Get("Authorization"), body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	sink, err := httpsink.New(httpsink.Config{URL: srv.URL + "/ingest", Token: "secret"})
	if err != nil {
		panic(err)
	}
	defer sink.Close(context.Background())
	err = sink.Write(context.Background(), []bridge.Sample{{
		Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V",
		Time: time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC),
	}})
	fmt.Println(err, sink.Stats().Sent)
	// Output:
	// POST /ingest
	// Authorization: Bearer secret
	// [{"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}]
	// <nil> 1
}

func ExampleNew_invalid() {
	_, err := httpsink.New(httpsink.Config{URL: "ftp://example.com", Timeout: -time.Second})
	fmt.Println(err)
	// Output:
	// httpsink: url: "ftp://example.com": scheme "ftp" is not http or https
	// httpsink: timeout: -1s is outside 100ms to 10m0s
}
