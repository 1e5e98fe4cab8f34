package event

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckNameFollowsThePolicy(t *testing.T) {
	require.NoError(t, Policy{}.CheckName("ws_1", "Source Created"))
	require.ErrorContains(t, Policy{}.CheckName("ws_1", "Report Schedule Modified"), "custom events are not enabled")
	listed := Policy{CustomEventWorkspaces: map[string]bool{"ws_2": true}}
	require.Error(t, listed.CheckName("ws_1", "Report Schedule Modified"))
	require.NoError(t, listed.CheckName("ws_2", "Report Schedule Modified"))
	require.ErrorContains(t, listed.CheckName("ws_2", "report modified"), "catalogue's style")
	require.NoError(t, Policy{AllowCustomEvents: true}.CheckName("ws_9", "Report Schedule Modified"))
	require.Error(t, Policy{AllowCustomEvents: true}.CheckName("ws_9", "Report\u0000Modified"))
}
