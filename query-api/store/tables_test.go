package store

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/query-api/search"
)

func TestLookupForServesOneLookupColumnAlone(t *testing.T) {
	s := New(nil, "db", 90, nil)
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{Events: []string{"Source Created", "Source Deleted"}}, "db.audit_events_by_event"},
		{Filter{ActorID: "usr_1"}, "db.audit_events_by_actor"},
		{Filter{ResourceID: "src_1"}, "db.audit_events_by_resource"},
		{Filter{}, ""},
		{Filter{ActorID: "usr_1", ResourceID: "src_1"}, ""},
		{Filter{ActorID: "usr_1", ActorType: "user"}, ""},
		{Filter{ResourceID: "src_1", Category: "Sources"}, ""},
		{Filter{Events: []string{"Source Created"}, ResourceType: "source"}, ""},
		{Filter{Events: []string{"Source Created"}, Search: []search.Clause{{Field: search.Text, Values: []string{"x"}}}}, ""},
	} {
		got, ok := s.lookupFor(c.f)
		require.Equal(t, c.want, got, "%+v", c.f)
		require.Equal(t, c.want != "", ok)
	}
}
