package templatecheck

import (
	"debug/elf"
	"fmt"
	"os"
)

// CheckBootstrap checks a built function binary as provided.al2023 on arm64 runs it: an executable,
// statically linked linux/arm64 ELF.
func CheckBootstrap(path string) []string {
	var p problems
	f, err := elf.Open(path)
	if err != nil {
		return []string{fmt.Sprintf("%s: not an ELF binary: %v", path, err)}
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		p.add("%s: machine %v/%v, want EM_AARCH64/ELFCLASS64 (GOARCH=arm64)", path, f.Machine, f.Class)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		p.add("%s: ELF type %v, want an executable", path, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			p.add("%s: dynamically linked; build with CGO_ENABLED=0", path)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o111 == 0 {
		p.add("%s: not executable", path)
	}
	return p
}
