package gateway

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The status page's files: a template rendered on the server (a complete
// page with JavaScript off), its style sheet and the script that keeps it
// live. No build step, nothing loaded from elsewhere.
//
//go:embed status/status.html status/status.css status/status.js
var statusFiles embed.FS

var statusPage = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"ts":    fmtTime,
	"ago":   fmtAgo,
	"dur":   fmtSeconds,
	"rate":  fmtRate,
	"bytes": fmtBytes,
	"join":  func(s []string) string { return strings.Join(s, " ") },
	"last":  func(a, q uint16) int { return int(a) + int(q) - 1 },
}).ParseFS(statusFiles, "status/status.html"))

// statusCSP keeps the page to its own files: no inline script (so that no
// text that slipped through could run), no other origin, no frames, no
// forms.
const statusCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Bounds of the interval query parameter of /status/events.
const (
	minEventInterval     = 250 * time.Millisecond
	maxEventInterval     = time.Minute
	defaultEventInterval = time.Second
)

// register adds the status page's routes to mux. Only GET and HEAD are
// served (the mux answers other methods 405 with Allow: GET, HEAD): the
// page shows, it never changes anything.
func (st *statusState) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /status", st.servePage)
	mux.HandleFunc("GET /status.json", st.serveJSON)
	mux.HandleFunc("GET /status/events", st.serveEvents)
	mux.HandleFunc("GET /status/status.css", serveAsset("status/status.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /status/status.js", serveAsset("status/status.js", "text/javascript; charset=utf-8"))
}

func statusHeaders(h http.Header, contentType string) {
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// servePage renders the page with the status now.
func (st *statusState) servePage(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := statusPage.Execute(&buf, struct{ S Status }{st.snapshot(time.Now())}); err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	statusHeaders(w.Header(), "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// serveJSON serves the status as JSON (type Status).
func (st *statusState) serveJSON(w http.ResponseWriter, r *http.Request) {
	b, err := json.MarshalIndent(st.snapshot(time.Now()), "", "  ")
	if err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	statusHeaders(w.Header(), "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// serveEvents streams the status as server-sent events: an event "status"
// whose data is the JSON of /status.json (on one line) at once and then
// every interval (query parameter, 250ms to 1m; default 1s), until the
// client goes away or the gateway stops, which sends an event "end".
// At most maxStreams streams run at once; more are answered 503.
func (st *statusState) serveEvents(w http.ResponseWriter, r *http.Request) {
	interval := defaultEventInterval
	if q := r.URL.Query().Get("interval"); q != "" {
		d, err := time.ParseDuration(q)
		if err != nil || d < minEventInterval || d > maxEventInterval {
			http.Error(w, fmt.Sprintf("status: interval %q: want a duration from %v to %v", q, minEventInterval, maxEventInterval), http.StatusBadRequest)
			return
		}
		interval = d
	}
	select {
	case st.streams <- struct{}{}:
		defer func() { <-st.streams }()
	default:
		http.Error(w, fmt.Sprintf("status: %d event streams are open already; poll /status.json instead", maxStreams), http.StatusServiceUnavailable)
		return
	}
	statusHeaders(w.Header(), "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // a proxy in front must not hold the events back
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	send := func(event string, data []byte) bool {
		// A client that stopped reading must not hold the goroutine.
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		if err == nil {
			err = rc.Flush()
		}
		return err == nil
	}
	if _, err := fmt.Fprintf(w, "retry: 2000\n\n"); err != nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		b, err := json.Marshal(st.snapshot(time.Now()))
		if err != nil || !send("status", b) {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-st.done:
			send("end", []byte("{}"))
			return
		case <-t.C:
		}
	}
}

// serveAsset serves one embedded file.
func serveAsset(name, contentType string) http.HandlerFunc {
	b, err := statusFiles.ReadFile(name)
	if err != nil {
		panic(err) // embedded above: a build without it does not compile
	}
	return func(w http.ResponseWriter, r *http.Request) {
		statusHeaders(w.Header(), contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(b)
		}
	}
}

// The page's formats; status.js has the same.

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func fmtAgo(now, t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return fmtSeconds(max(0, now.Sub(t).Seconds())) + " ago (" + fmtTime(t) + ")"
}

func fmtSeconds(s float64) string {
	switch {
	case s <= 0 || math.IsNaN(s):
		return "0 s"
	case s < 0.001:
		return strconv.FormatFloat(s*1e6, 'f', 0, 64) + " µs"
	case s < 0.01:
		return strconv.FormatFloat(s*1e3, 'f', 2, 64) + " ms"
	case s < 1:
		return strconv.FormatFloat(s*1e3, 'f', 1, 64) + " ms"
	case s < 10:
		return strconv.FormatFloat(s, 'f', 2, 64) + " s"
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	case s < 3600:
		return fmt.Sprintf("%d min %d s", int(s/60), int(math.Mod(s, 60)))
	}
	return fmt.Sprintf("%d h %d min", int(s/3600), int(math.Mod(s, 3600)/60))
}

func fmtRate(r float64) string {
	if r > 0 && r < 10 {
		return strconv.FormatFloat(r, 'f', 2, 64) + "/s"
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + "/s"
}

func fmtBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + " B"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}
