package api

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/schemas/event"
)

// TestSenderIsServedOverClickHouse stores events with and without a
// sender in the real server and reads them back through the API: the
// list and the single event carry sender, and the CSV export ends with
// the sender columns.
func TestSenderIsServedOverClickHouse(t *testing.T) {
	proctest.Require(t)
	now := time.Now().UTC()
	viaGateway := stored("evt_gw", "Alice", now.Add(-time.Minute))
	viaGateway.Sender = event.Sender{CredentialID: "legacy-0123456789ab", Producer: "billing"}
	viaEmitter := stored("evt_em", "Bob", now.Add(-2*time.Minute))
	viaEmitter.Sender = event.Sender{Producer: "warehouse-service"}
	before := stored("evt_old", "Carol", now.Add(-3*time.Minute)) // stored before senders were recorded
	srv := stackServer(t, &fakeRecorder{}, viaGateway, viaEmitter, before)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)

	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events", tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var page struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Data, 3)
	require.JSONEq(t, `{"credential_id":"legacy-0123456789ab","producer":"billing"}`, string(page.Data[0]["sender"]))
	require.JSONEq(t, `{"producer":"warehouse-service"}`, string(page.Data[1]["sender"]))
	require.JSONEq(t, `{}`, string(page.Data[2]["sender"]))

	resp, body, err = fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events/evt_gw", tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	one, err := event.Decode(body)
	require.NoError(t, err)
	require.Equal(t, viaGateway.Sender, one.Sender)

	resp, body, err = fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv", tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err)
	n := len(CSVColumns)
	require.Equal(t, []string{"sender_credential_id", "sender_producer"}, records[0][n-2:], "new columns at the end")
	require.Len(t, records, 4)
	require.Equal(t, []string{"legacy-0123456789ab", "billing"}, records[1][n-2:])
	require.Equal(t, []string{"", "warehouse-service"}, records[2][n-2:])
	require.Equal(t, []string{"", ""}, records[3][n-2:])
}
