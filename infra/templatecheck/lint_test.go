package templatecheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cfnLint runs infra/scripts/lint-template.sh (what `make test` runs) on a template.
func cfnLint(t *testing.T, template string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("cfn-lint"); err != nil {
		t.Fatal("cfn-lint not found on PATH: these machines ship it with the SAM translator (pip install cfn-lint==1.51.0 elsewhere)")
	}
	cmd := exec.Command(filepath.Join(repoRoot(t), "infra", "scripts", "lint-template.sh"), template)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCfnLintClean(t *testing.T) {
	if out, err := cfnLint(t, filepath.Join(repoRoot(t), "template.yaml")); err != nil {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}

// TestCfnLintFailsOnFindings shows the lint script fails the build on a broken template.
func TestCfnLintFailsOnFindings(t *testing.T) {
	src := readFile(t, "template.yaml")
	broken := strings.Replace(src, "Runtime: provided.al2023", "Runtime: provided.al2099", 1)
	if broken == src {
		t.Fatal("template.yaml has no Runtime to break")
	}
	p := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := cfnLint(t, p)
	if err == nil {
		t.Fatalf("cfn-lint passed a template with an invalid runtime:\n%s", out)
	}
	if !strings.Contains(out, "provided.al2099") {
		t.Errorf("finding does not name the problem:\n%s", out)
	}
}
