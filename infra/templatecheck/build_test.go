package templatecheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestMakeBuildProducesArm64Bootstrap runs what `sam build` runs for each function (BuildMethod
// makefile: `make build-<LogicalId>` with ARTIFACTS_DIR, from the CodeUri, the repository root) and
// checks that a static linux/arm64 ELF named bootstrap appears.
func TestMakeBuildProducesArm64Bootstrap(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make not found")
	}
	root := repoRoot(t)
	var ids []string
	for _, r := range loadTemplate(t).ResourcesOfType(typeFunction) {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build-"+id)
			cmd.Dir = root
			// SAM passes ARTIFACTS_DIR in the environment; a developer's GOOS/GOARCH must not leak in.
			cmd.Env = append(os.Environ(), "ARTIFACTS_DIR="+dir, "GOFLAGS=", "GOOS=", "GOARCH=")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", id, err, out)
			}
			reportAll(t, CheckBootstrap(filepath.Join(dir, "bootstrap")))
		})
	}
}

// TestCheckBootstrapRejectsOtherBinaries shows the ELF check fails on a binary for another machine
// (this test binary, when the tests do not run on arm64) and on a non-ELF file.
func TestCheckBootstrapRejectsOtherBinaries(t *testing.T) {
	if runtime.GOARCH != "arm64" {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		if found := CheckBootstrap(self); !strings.Contains(strings.Join(found, "\n"), "EM_AARCH64") {
			t.Errorf("a %s binary passed the arm64 check: %v", runtime.GOARCH, found)
		}
	}
	script := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if found := CheckBootstrap(script); len(found) == 0 {
		t.Error("a shell script passed as bootstrap")
	}
}
