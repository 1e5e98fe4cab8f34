package forward

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// countingListener is a local target that is not allow-listed: it counts
// the connections that reach it.
func countingListener(t *testing.T) (string, *atomic.Int64) {
	var accepted atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, &accepted
}

// A target or webhook the outbound policy refuses (here a name resolving
// to a loopback address that is not allow-listed, as a URL saved before
// the API checked literals would be) is never connected to: its events
// are dead-lettered at once with the policy's reason and nothing more.
func TestRefusedTargetsAreDeadLetteredWithoutAConnection(t *testing.T) {
	s := newStack(t, false, 1)
	port, accepted := countingListener(t)
	s.enable(t, "ws_ssrf", "http://localhost:"+port+"/?query_id=x", false)
	s.put(t, "ws_ssrf", trackingplan.KindAlerts, trackingplan.Alerts{Enabled: true,
		WebhookURL: "http://127.0.0.1:" + port + "/hook-secret", Events: []string{"Source Created"}})
	_, _ = s.run(t, s.config(), Deps{})
	s.produce(t, mkEvent("ws_ssrf", 0, "Source Created", ""))

	dl := s.dlqRecords(t, 2)
	require.Len(t, dl, 2)
	kinds := map[string]bool{}
	for _, r := range dl {
		kinds[header(r, topics.HeaderForwardTarget)] = true
		reason := header(r, topics.HeaderDLQReason)
		require.Equal(t, "rejected: refused by policy", reason, "the reason says no more than that")
		require.NotContains(t, reason, "hook-secret")
	}
	require.Equal(t, map[string]bool{TargetSource: true, TargetAlert: true}, kinds)
	eventually(t, func() bool { return s.committed(t)[0] == 1 }, "dead letters count as done")
	require.Zero(t, accepted.Load(), "no connection reached the refused target")
}

// A redirect is the target's answer, never followed: the second server,
// allow-listed too, is not contacted and never sees the write key.
func TestRedirectsAreNotFollowed(t *testing.T) {
	s := newStack(t, false, 1)
	second := newSink(t)
	var redirected atomic.Int64
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		http.Redirect(w, r, second.srv.URL+"/v1/batch", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(first.Close)
	allowSink(first.Listener.Addr().String())
	s.enable(t, "ws_r", first.URL, false)
	_, _ = s.run(t, s.config(), Deps{})
	s.produce(t, mkEvent("ws_r", 0, "Source Created", ""))

	dl := s.dlqRecords(t, 1)
	require.Len(t, dl, 1)
	require.Equal(t, "rejected: HTTP 307: redirect not followed", header(dl[0], topics.HeaderDLQReason))
	require.EqualValues(t, 1, redirected.Load(), "a 3xx is final, not retried")
	second.mu.Lock()
	defer second.mu.Unlock()
	require.Empty(t, second.requests, "the redirect target was not requested")
}

// The target URL's query string is kept and v1/batch appended to its path.
func TestBatchURLKeepsTheTargetsQueryString(t *testing.T) {
	s := newStack(t, false, 1)
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.RequestURI())
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	allowSink(srv.Listener.Addr().String())
	s.enable(t, "ws_q", srv.URL+"/in/?token=abc&x=1", false)
	_, _ = s.run(t, s.config(), Deps{})
	s.produce(t, mkEvent("ws_q", 0, "Source Created", ""))
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, "delivered")
	require.Equal(t, "/in/v1/batch?token=abc&x=1", got[0])
}

func TestClassifyRefusedIsFinal(t *testing.T) {
	e := Classify(0, nil, &net.OpError{Op: "dial", Net: "tcp", Err: egress.ErrRefused}, base)
	require.False(t, e.Retryable)
	require.Equal(t, "rejected", e.Reason())
	require.Equal(t, "refused by policy", e.Error())
}

// A dead letter replayed to a target the policy refuses stays in the
// dead-letter topic with that reason; nothing reaches the target.
func TestReplayToARefusedTargetKeepsTheLetter(t *testing.T) {
	s := newStack(t, false, 1)
	port, accepted := countingListener(t)
	s.enable(t, "ws_1", "http://[::ffff:127.0.0.1]:"+port, false)
	ev := mkEvent("ws_1", 1, "Source Created", "")
	v, err := event.Marshal(&ev)
	require.NoError(t, err)
	cl, err := kgo.NewClient(s.opts...)
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: s.dlq, Key: []byte("ws_1"), Value: v,
		Headers: []kgo.RecordHeader{{Key: topics.HeaderForwardTarget, Value: []byte(TargetSource)},
			{Key: topics.HeaderDLQReason, Value: []byte("retries_exhausted: 500")}}}).FirstErr())
	st, err := Replay(context.Background(), s.config(), Deps{KafkaOpts: s.opts}, ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, ReplayStats{Requeued: 1}, st)
	dl := s.dlqRecords(t, 2)
	require.Len(t, dl, 2)
	require.Equal(t, "replay failed: refused by policy", header(dl[1], topics.HeaderDLQReason))
	require.Zero(t, accepted.Load())
}

// A stored webhook URL that no longer parses (saved before the URL rules)
// fails without its path, the webhook's secret, in the error that becomes
// the dead-letter reason.
func TestUnusableWebhookURLStaysOutOfTheError(t *testing.T) {
	s := NewSender(time.Second, 1, egress.Config{}.Policy(), func() time.Time { return base })
	for _, u := range []string{
		"https://hooks.example.com/services/T0/B0/hook\x7fsecret",
		"https://hooks.example.com/services/T0/B0/hook secret%zz",
		"://hooks.example.com/hook-secret",
	} {
		t.Run(u, func(t *testing.T) {
			err := s.SendAlert(context.Background(), u, "x")
			var de *DeliveryError
			require.ErrorAs(t, err, &de)
			require.False(t, de.Retryable)
			require.NotContains(t, err.Error(), "secret")
			require.NotContains(t, err.Error(), "hooks.example.com")
		})
	}
}
