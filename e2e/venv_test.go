package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// venvProgram returns the path of a program of the repository's
// virtualenv, where scripts/install-tools.sh python installs what holds
// it (what, for the message). The program is the point of the test that
// asks, so a missing one fails rather than skips.
func venvProgram(t *testing.T, name, what string) string {
	t.Helper()
	path := filepath.Join(testkit.RepoRoot(t), ".build", "venv", "bin", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no %s at .build/venv/bin/%s: run scripts/install-tools.sh python (%v)", what, name, err)
	}
	return path
}
