package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// hostileBody is what a hostile target answers: text meant for the
// operators' terminals and tools that read dead letters.
const hostileBody = "\x1b[2J\x1b[31mALL CLEAR\x1b[0m\ndlq forwarder replay -all\r\n=HYPERLINK(\"http://evil.example\")"

// A target's answer never reaches a dead-letter reason: the reason names
// the status and Go's fixed text for it, for the forwarder's own dead
// letters, alerts, and letters a replay keeps. Before, up to 512 bytes of
// the body followed the status.
func TestDeadLetterReasonsNeverEchoTheTarget(t *testing.T) {
	s := newStack(t, false, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusBadRequest
		if r.URL.Path == "/hook" {
			status = http.StatusNotFound
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(hostileBody))
	}))
	t.Cleanup(target.Close)
	allowSink(target.Listener.Addr().String())
	s.enable(t, "ws_h", target.URL, false)
	s.put(t, "ws_h", trackingplan.KindAlerts, trackingplan.Alerts{Enabled: true,
		WebhookURL: target.URL + "/hook", Events: []string{"Source Created"}})
	_, stop := s.run(t, s.config(), Deps{})
	s.produce(t, mkEvent("ws_h", 0, "Source Created", ""))

	dl := s.dlqRecords(t, 2)
	require.Len(t, dl, 2)
	reasons := map[string]string{}
	for _, r := range dl {
		reasons[header(r, topics.HeaderForwardTarget)] = header(r, topics.HeaderDLQReason)
	}
	require.Equal(t, map[string]string{
		TargetSource: "rejected: HTTP 400: Bad Request",
		TargetAlert:  "rejected: HTTP 404: Not Found",
	}, reasons)
	stop()

	st, err := Replay(context.Background(), s.config(), Deps{KafkaOpts: s.opts}, ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, st.Requeued)
	dl = s.dlqRecords(t, 4)
	require.Len(t, dl, 4)
	for _, r := range dl[2:] {
		reason := header(r, topics.HeaderDLQReason)
		require.Contains(t, []string{"replay failed: HTTP 400: Bad Request", "replay failed: HTTP 404: Not Found"}, reason)
	}
}

// A stored URL that no call can reach (here a port outside 1-65535) is
// final at once, without quoting the URL: "rejected: invalid target URL",
// and for a webhook "rejected: webhook URL: not a usable URL". Before, the
// dial error was a transport error, retried until the attempts ran out,
// and its text named the port.
func TestUncallableURLsAreFinalAtOnce(t *testing.T) {
	s := NewSender(time.Second, 1, egress.Config{AllowedTargets: []string{"127.0.0.0/8"}}.Policy(), func() time.Time { return base })
	for _, u := range []string{"http://127.0.0.1:99999/in", "http://127.0.0.1:0", "http://127.0.0.1:/x", "ftp://127.0.0.1/", "http:///path"} {
		err := s.SendBatch(context.Background(), trackingplan.Target{URL: u, WriteKey: "wk"}, [][]byte{[]byte(`{}`)})
		var de *DeliveryError
		require.ErrorAs(t, err, &de, u)
		require.False(t, de.Retryable, u)
		require.Equal(t, "rejected: invalid target URL", de.Reason()+": "+de.Error(), u)
	}
	err := s.SendAlert(context.Background(), "https://hooks.example.com:99999/hook-secret", "x")
	var de *DeliveryError
	require.ErrorAs(t, err, &de)
	require.False(t, de.Retryable)
	require.Equal(t, "rejected: webhook URL: not a usable URL", de.Reason()+": "+de.Error())
}

func TestStatusTextIsFixed(t *testing.T) {
	for status, want := range map[int]string{
		400: "Bad Request", 422: "Unprocessable Entity", 503: "Service Unavailable",
		307: "redirect not followed", 599: "status not known",
	} {
		require.Equal(t, want, statusText(status), status)
	}
}
