package main

import "testing"

func TestBuildInfoString(t *testing.T) {
	const rev = "d937cd6e6786620280f52bdcb79d02a01ed3cc86"
	for _, tc := range []struct {
		info buildInfo
		want string
	}{
		{buildInfo{Version: "(devel)"}, "dev"},
		{buildInfo{Version: "v0.2.0"}, "v0.2.0"},
		{buildInfo{Version: "(devel)", Revision: rev}, "dev+d937cd6e6786"},
		{buildInfo{Version: "(devel)", Revision: rev, Modified: true}, "dev+d937cd6e6786+dirty"},
		{buildInfo{Version: "v0.0.0-20261207024303-d937cd6e6786", Revision: rev}, "v0.0.0-20261207024303-d937cd6e6786"},
		{buildInfo{Version: "v0.0.0-20261207024303-d937cd6e6786+dirty", Revision: rev, Modified: true}, "v0.0.0-20261207024303-d937cd6e6786+dirty"},
	} {
		if got := tc.info.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.info, got, tc.want)
		}
	}
}
