package influx_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// influxd is an InfluxDB 1.x server run by a test from Debian's influxdb
// package, with its data in a temporary directory and its HTTP API on a port
// the OS chose.
type influxd struct {
	t    testing.TB
	bin  string
	dir  string
	addr string // host:port of the HTTP API, fixed after the first start

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

var listenRe = regexp.MustCompile(`msg="Listening on HTTP".* addr=(\S+)`)

// startInfluxd starts influxd, or skips the test when it is not installed
// (fails under M2MB_INTEROP=1), as testproxy.LookPeer does for every peer.
func startInfluxd(t testing.TB) *influxd {
	t.Helper()
	bin := testproxy.LookPeer(t, "influxd") // Debian package influxdb
	d := &influxd{t: t, bin: bin, dir: t.TempDir()}
	d.start()
	t.Cleanup(d.stop)
	return d
}

// start runs influxd and waits until it answers /ping.
func (d *influxd) start() {
	t := d.t
	t.Helper()
	bind := d.addr
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	cfg := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:0"
[meta]
  dir = %[1]q
[data]
  dir = %[2]q
  wal-dir = %[3]q
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = %[4]q
  log-enabled = false
  pprof-enabled = false
`, filepath.Join(d.dir, "meta"), filepath.Join(d.dir, "data"), filepath.Join(d.dir, "wal"), bind)
	path := filepath.Join(d.dir, "influxd.conf")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))

	cmd := exec.Command(d.bin, "-config", path)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = cmd.Stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	addrc := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	select {
	case a := <-addrc:
		d.addr = a
	case <-done:
		t.Fatalf("influxd exited before listening")
	case <-time.After(30 * time.Second):
		d.stop()
		t.Fatalf("influxd did not listen within 30s")
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(d.url() + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	}, 30*time.Second, 20*time.Millisecond, "influxd does not answer /ping")
}

// stop ends influxd and waits for it to exit.
func (d *influxd) stop() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func (d *influxd) url() string { return "http://" + d.addr }

// query runs an InfluxQL statement and returns its first result.
func (d *influxd) query(db, q string) (queryResult, error) {
	v := url.Values{"q": {q}, "epoch": {"ns"}}
	if db != "" {
		v.Set("db", db)
	}
	resp, err := http.PostForm(d.url()+"/query", v)
	if err != nil {
		return queryResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return queryResult{}, err
	}
	var r struct {
		Results []queryResult `json:"results"`
		Error   string        `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return queryResult{}, fmt.Errorf("query %q: %w: %s", q, err, body)
	}
	if r.Error != "" || len(r.Results) == 0 {
		return queryResult{}, fmt.Errorf("query %q: %s", q, body)
	}
	if r.Results[0].Error != "" {
		return queryResult{}, fmt.Errorf("query %q: %s", q, r.Results[0].Error)
	}
	return r.Results[0], nil
}

type queryResult struct {
	Series []struct {
		Name    string            `json:"name"`
		Tags    map[string]string `json:"tags"`
		Columns []string          `json:"columns"`
		Values  [][]any           `json:"values"`
	} `json:"series"`
	Error string `json:"error"`
}

var dbSeq struct {
	sync.Mutex
	n int
}

// newDB creates a database with a unique name.
func (d *influxd) newDB(t *testing.T) string {
	t.Helper()
	dbSeq.Lock()
	dbSeq.n++
	name := fmt.Sprintf("test%d", dbSeq.n)
	dbSeq.Unlock()
	_, err := d.query("", "CREATE DATABASE "+name)
	require.NoError(t, err)
	return name
}

// readAll returns every sample of db, made back from the points: the
// measurement is the source, the point and unit tags the point and unit, and
// whichever value field is set the value (JSON numbers without a fraction or
// exponent become ints).
func (d *influxd) readAll(db string) ([]bridge.Sample, error) {
	ms, err := d.query(db, "SHOW MEASUREMENTS")
	if err != nil {
		return nil, err
	}
	var out []bridge.Sample
	for _, s := range ms.Series {
		for _, row := range s.Values {
			name := row[0].(string)
			r, err := d.query(db, `SELECT * FROM "`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name)+`"`)
			if err != nil {
				return nil, err
			}
			for _, ser := range r.Series {
				for _, vals := range ser.Values {
					sm := bridge.Sample{Source: ser.Name}
					for i, c := range ser.Columns {
						v := vals[i]
						if v == nil {
							continue
						}
						switch c {
						case "time":
							n, err := v.(json.Number).Int64()
							if err != nil {
								return nil, err
							}
							sm.Time = time.Unix(0, n)
						case "point":
							sm.Point = v.(string)
						case "unit":
							sm.Unit = v.(string)
						default:
							sm.Value = jsonValue(v)
						}
					}
					out = append(out, sm)
				}
			}
		}
	}
	return out, nil
}

func jsonValue(v any) bridge.Value {
	switch v := v.(type) {
	case bool:
		return bridge.Bool(v)
	case string:
		return bridge.String(v)
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return bridge.Int(i)
		}
		f, _ := strconv.ParseFloat(string(v), 64)
		return bridge.Float(f)
	}
	return bridge.Value{}
}

// readback polls db until it holds want samples or ctx ends.
func (d *influxd) readback(db string) func(ctx context.Context, want int) ([]bridge.Sample, error) {
	return func(ctx context.Context, want int) ([]bridge.Sample, error) {
		for {
			got, err := d.readAll(db)
			if err == nil && len(got) >= want {
				return got, nil
			}
			select {
			case <-ctx.Done():
				return got, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// fieldTypes returns the type InfluxDB gave each field of measurement m.
func (d *influxd) fieldTypes(db, m string) (map[string]string, error) {
	r, err := d.query(db, `SHOW FIELD KEYS FROM "`+m+`"`)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range r.Series {
		for _, row := range s.Values {
			out[row[0].(string)] = row[1].(string)
		}
	}
	return out, nil
}

func newV1(t *testing.T, d *influxd, db string, mod func(*influx.Config)) *influx.Sink {
	t.Helper()
	cfg := influx.Config{URL: d.url(), Database: db, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := influx.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}
