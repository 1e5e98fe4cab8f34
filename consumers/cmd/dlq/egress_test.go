package main

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBadAllowListIsAUsageError(t *testing.T) {
	t.Setenv("AUDITTRAIL_FORWARD_ALLOWED_TARGETS", "127.0.0.1:18555,localhost:80")
	code, err := forwarder(context.Background(), io.Discard, io.Discard, "list")
	require.Equal(t, 2, code)
	require.ErrorContains(t, err, `AUDITTRAIL_FORWARD_ALLOWED_TARGETS entry "localhost:80"`)
}
