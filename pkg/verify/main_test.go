package verify

import (
	"os"
	"testing"

	"github.com/cnstack/cnstack/internal/testutil/vmtest"
)

// TestMain keeps VM images and runs in the test VM cache, out of the
// user's $CNSTACK_HOME.
func TestMain(m *testing.M) {
	vmtest.UseTestCache()
	os.Exit(m.Run())
}
