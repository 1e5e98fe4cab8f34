// Package browsertest drives headless Chromium for the page's browser tests.
//
// It uses chromedp and Debian's chromium package, which scripts/test
// installs.
//
// New starts one browser per test with a fresh profile, records every
// console error, uncaught exception and browser log error of the page, and
// fails the test at cleanup when one appeared that the test did not expect.
// Screenshots go to artifacts/ at the repository root (git-ignored).
//
// Browser tests run when AUDITTRAIL_INTEGRATION=1 (scripts/test sets it);
// then a missing browser fails the test instead of skipping it.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// ExecPath is where Debian's chromium package puts the browser.
const ExecPath = "/usr/bin/chromium"

// Browser is one headless Chromium with one tab. Its methods fail the test
// it is bound to (New's, or the one given to For).
type Browser struct {
	// Ctx runs actions in the tab; it ends when the test ends.
	Ctx context.Context

	t testing.TB
	*shared
}

type shared struct {
	downloads string
	mu        sync.Mutex
	messages  []chromedp.ConsoleMessage
	allowed   []string
}

// For returns the browser bound to t (a subtest), sharing tab and records.
func (b *Browser) For(t testing.TB) *Browser {
	return &Browser{Ctx: b.Ctx, t: t, shared: b.shared}
}

// Require skips t unless browser tests are enabled, and fails it when they
// are enabled but the browser is missing.
func Require(t testing.TB) {
	t.Helper()
	if !proctest.Enabled() {
		t.Skip("browser test: run scripts/test (or set " + config.Integration.Name + "=1 with chromium installed)")
	}
	if _, err := os.Stat(ExecPath); err != nil {
		t.Fatalf("%s is missing: install it with scripts/test (apt-get install -y chromium): %v", ExecPath, err)
	}
}

// New starts the browser with a window of width x height.
func New(t testing.TB, width, height int) *Browser {
	t.Helper()
	Require(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ExecPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx, t: t, shared: &shared{downloads: t.TempDir()}}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to ctx
		t.Fatalf("start chromium: %v", err)
	}
	// A headless tab never has the window's focus; emulate it so that
	// :focus-visible and keyboard focus behave as for a person.
	if _, err := chromedp.Call(ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatalf("emulate focus: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: b.downloads, EventsEnabled: ptr(true),
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	t.Cleanup(func() { b.RequireNoConsoleErrors() })
	return b
}

func ptr[T any](v T) *T { return &v }

// AllowNetworkError accepts browser log errors about failed requests whose
// URL contains substr (e.g. a 403 the test provokes on purpose).
func (b *Browser) AllowNetworkError(substr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed = append(b.allowed, substr)
}

// ConsoleErrors returns the console errors, exceptions and browser log
// errors recorded so far, except allowed network errors.
func (b *Browser) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
next:
	for _, m := range b.messages {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		if m.Source == "network" {
			for _, a := range b.allowed {
				if strings.Contains(m.URL, a) {
					continue next
				}
			}
		}
		out = append(out, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
	}
	return out
}

// RequireNoConsoleErrors fails the test when the page logged an error.
func (b *Browser) RequireNoConsoleErrors() {
	b.t.Helper()
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		b.t.Errorf("the page logged %d console error(s):\n%s", len(errs), strings.Join(errs, "\n"))
	}
}

// Do runs actions in the tab, failing the test on error; each call has its
// own time limit.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\nconsole errors so far: %v", err, b.ConsoleErrors())
	}
}

// Eval evaluates a JavaScript expression (promises are awaited) and
// decodes its result into T.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Check evaluates a JavaScript condition and reports whether it holds; an
// error or exception counts as false. It never fails the test, so it is
// safe inside require.Eventually.
func (b *Browser) Check(expr string) bool {
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { try { return Boolean(`+expr+`); } catch (e) { return false; } })()`))
	return err == nil && v
}

// Download runs trigger and returns the content and suggested name of the
// file the page downloads because of it.
func (b *Browser) Download(trigger chromedp.Action[chromedp.Void]) (name string, content []byte) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 60*time.Second)
	defer cancel()
	begin := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx, trigger); err != nil {
		b.t.Fatalf("trigger download: %v", err)
	}
	var guid string
	for ev, err := range begin {
		if err != nil {
			b.t.Fatalf("no download began: %v (console errors: %v)", err, b.ConsoleErrors())
		}
		guid, name = ev.GUID, ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			b.t.Fatalf("download did not finish: %v", err)
		}
		if ev.GUID != guid {
			continue
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			b.t.Fatalf("download %s was canceled", name)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	content, err := os.ReadFile(filepath.Join(b.downloads, guid))
	if err != nil {
		b.t.Fatalf("read download: %v", err)
	}
	return name, content
}

// Screenshot saves the visible part of the page as artifacts/<dir>/<name>.png
// at the repository root and returns the path.
func (b *Browser) Screenshot(dir, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	out := filepath.Join(ArtifactsDir(b.t), dir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		b.t.Fatalf("artifacts: %v", err)
	}
	p := filepath.Join(out, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Fatalf("save screenshot: %v", err)
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

// ArtifactsDir is artifacts/ at the repository root (the folder holding
// go.mod).
func ArtifactsDir(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "artifacts")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's folder")
		}
		dir = parent
	}
}
