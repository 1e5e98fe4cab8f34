package httpserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

// TestPathParametersAreDecoded: a handler sees what the client meant,
// whether or not the client escaped it.
func TestPathParametersAreDecoded(t *testing.T) {
	e := New(Options{Name: "t"})
	e.GET("/w/:ws/e/:id", func(c echo.Context) error {
		return c.String(http.StatusOK, c.Param("ws")+"|"+c.Param("id"))
	})
	for _, tt := range []struct{ target, want string }{
		{"/w/ws_1/e/a:b", "ws_1|a:b"},
		{"/w/ws_1/e/a%3Ab", "ws_1|a:b"},
		{"/w/ws%3A1/e/a%3ab", "ws:1|a:b"},
		{"/w/ws_1/e/a%2Fb", "ws_1|a/b"},
		{"/w/ws_1/e/%25zz", "ws_1|%zz"},
		{"/w/ws_1/e/caf%C3%A9", "ws_1|café"},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.target, nil))
		require.Equal(t, http.StatusOK, rec.Code, tt.target)
		require.Equal(t, tt.want, rec.Body.String(), tt.target)
	}
}
