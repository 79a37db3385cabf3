package gateway

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestStatusPageInBrowser loads the status page in a real browser (Debian's
// headless Chromium, which .ci/run installs) against a gateway polling a
// simulated meter, and asserts from the DOM: the device and its values
// appear, a value changes on the page without a reload, the <script> in a
// string point is shown as text and did not run, a device whose server
// stops is shown down with its error, with JavaScript off the page is a
// complete snapshot, and without an event stream to be had it polls
// status.json. Screenshots go to $M2MB_ARTIFACTS (default: the
// test's temporary directory). It runs with M2MB_INTEROP=1.
func TestStatusPageInBrowser(t *testing.T) {
	if os.Getenv("M2MB_INTEROP") != "1" {
		t.Skip("the browser test runs with M2MB_INTEROP=1 (it starts Chromium)")
	}
	bin := testproxy.LookPeer(t, "chromium")
	artifacts := os.Getenv("M2MB_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(artifacts, 0o755))

	srv := statusSim(t, modbustest.WithTick(50*time.Millisecond))
	_, hs := statusGateway(t, `
devices:
  - name: meter1
    interval: 100ms
    modbus: {url: `+srv.URL()+`, timeout: 300ms}
    points:
      - {name: voltage, table: input, address: 0, type: float32, unit: V}
      - {name: label, table: holding, address: 10, type: string, length: 16}
      - {name: relay, table: coil, address: 0, type: bool}
sinks:
  - stdout: {}
  - file: {path: `+filepath.Join(t.TempDir(), "samples.jsonl")+`}
    overflow: drop_oldest
`)
	page := hs.URL + "/status"

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // root on the CI machine
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these Chromium reaches for the network, which the
		// test machines do not have, and fails.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	// chromedp's goroutines may log after the test ended, which t.Logf
	// must not be called for.
	var logMu sync.Mutex
	ended := false
	t.Cleanup(func() { logMu.Lock(); ended = true; logMu.Unlock() })
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		if !ended {
			t.Logf(format, args...)
		}
	}
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	// waitFor polls a JavaScript condition on the page until it holds.
	waitFor := func(ctx context.Context, what, cond string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		require.NoError(t, err, "%s: %s", what, cond)
	}
	text := func(ctx context.Context, js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		require.NoError(t, err, js)
		return s
	}
	shot := func(ctx context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		path := filepath.Join(artifacts, name)
		require.NoError(t, os.WriteFile(path, png, 0o644))
		t.Log("screenshot:", path)
	}
	const (
		device  = `document.querySelector('article.device[data-device="meter1"]')`
		voltage = device + `.querySelector('tr[data-point="voltage"] td.value')`
		label   = device + `.querySelector('tr[data-point="label"] td.value')`
	)

	// The device and its values, live.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(page)))
	waitFor(ctx, "the page is live", `document.querySelector('#live').dataset.live === "live"`)
	waitFor(ctx, "the device is up with its values", device+` !== null && `+device+`.querySelector('.state').dataset.state === "up" && `+
		device+`.querySelectorAll('tbody tr[data-point]').length === 3`)
	v1 := text(ctx, voltage+`.textContent`)
	require.NotEmpty(t, v1)
	waitFor(ctx, "the voltage changes without a reload", voltage+`.textContent !== `+jsString(v1)+` && `+voltage+`.textContent !== ""`)
	assert.Equal(t, "V", text(ctx, device+`.querySelector('tr[data-point="voltage"] td.unit').textContent`))
	assert.Equal(t, "good", text(ctx, device+`.querySelector('tr[data-point="voltage"] td.quality').textContent`))
	assert.Equal(t, "stdout", text(ctx, `document.querySelector('#sinks tr[data-sink="stdout"] .name').textContent`))
	assert.Equal(t, "up", text(ctx, `document.querySelector('#sinks tr[data-sink="stdout"] .state').dataset.state`))

	// The <script> of the string point is text, not an element, and did
	// not run.
	assert.Equal(t, scriptValue, text(ctx, label+`.textContent`))
	assert.Equal(t, "0", text(ctx, `String(`+label+`.querySelectorAll('*').length)`))
	assert.Equal(t, "undefined", text(ctx, `typeof window.pwned`))
	assert.Equal(t, "1", text(ctx, `String(document.querySelectorAll('script').length)`), "the page's own script only")

	// Open a read plan; it stays open across updates.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`article.device[data-device="meter1"] details.plan summary`))))
	snap := text(ctx, `document.querySelector('#snapshot').textContent`)
	waitFor(ctx, "an update after opening the plan", `document.querySelector('#snapshot').textContent !== `+jsString(snap))
	assert.Equal(t, "true", text(ctx, `String(`+device+`.querySelector('details.plan').open)`))
	assert.Contains(t, text(ctx, device+`.querySelector('details.plan').textContent`), "label")
	shot(ctx, "status-page.png")

	// With JavaScript off: the server's snapshot, complete.
	static, cancelStatic := chromedp.NewContext(ctx)
	defer cancelStatic()
	noScript := func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return chromedp.Void{}, err
	}
	require.NoError(t, chromedp.Do(static, noScript, chromedp.Navigate(page)))
	assert.Equal(t, "static", text(static, `document.querySelector('#live').dataset.live`), "(evaluated by the test, not the page)")
	assert.Equal(t, "up", text(static, device+`.querySelector('.state').dataset.state`))
	assert.NotEmpty(t, text(static, voltage+`.textContent`))
	assert.Equal(t, scriptValue, text(static, label+`.textContent`))
	assert.Equal(t, "0", text(static, `String(`+label+`.querySelectorAll('*').length)`))
	cancelStatic()

	// No event stream to be had (all taken): the page polls status.json.
	// (The first tab holds one.)
	var held []context.CancelFunc
	for i := 0; ; i++ {
		require.Less(t, i, maxStreams, "streams are bounded")
		c, cancel := context.WithCancel(ctx)
		held = append(held, cancel)
		req, err := http.NewRequestWithContext(c, http.MethodGet, hs.URL+"/status/events", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	polled, cancelPolled := chromedp.NewContext(ctx)
	defer cancelPolled()
	require.NoError(t, chromedp.Do(polled, chromedp.Navigate(page)))
	waitFor(polled, "the page polls", `document.querySelector('#live').textContent.startsWith("live (polling)")`)
	snap = text(polled, `document.querySelector('#snapshot').textContent`)
	waitFor(polled, "and updates", `document.querySelector('#snapshot').textContent !== `+jsString(snap))
	assert.Equal(t, "up", text(polled, device+`.querySelector('.state').dataset.state`))
	cancelPolled()
	for _, c := range held {
		c()
	}

	// The meter goes away: the page shows the device down, with its error.
	require.NoError(t, srv.Close())
	waitFor(ctx, "the device is down", device+`.querySelector('.state').dataset.state === "down"`)
	waitFor(ctx, "with its error", device+`.querySelector('p.error') !== null && `+device+`.querySelector('p.error').textContent !== ""`)
	errText := text(ctx, device+`.querySelector('p.error').textContent`)
	t.Log("the device's error on the page:", errText)
	waitFor(ctx, "its points turn bad", device+`.querySelector('tr[data-point="voltage"] td.quality').textContent === "bad"`)
	assert.Contains(t, text(ctx, `document.querySelector('#live').textContent`), "live")
	shot(ctx, "status-page-down.png")
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\u2028", `\u2028`, "\u2029", `\u2029`, "<", `\x3c`)
	return `"` + r.Replace(s) + `"`
}
