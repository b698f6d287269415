// Package kmod reads what depmod reads from Linux kernel modules (the
// .modinfo section and the exported symbols) and writes the module index
// files depmod writes, so modules added to an initramfs outside the guest
// are found by the guest's own modprobe.
package kmod

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// MaxModuleSize bounds a module's uncompressed size: the largest modules
// of a distribution kernel (amdgpu, with debug info stripped) are near
// 20 MiB.
const MaxModuleSize = 256 << 20

// Suffixes are a module file's name endings: uncompressed and as kmod
// compresses them.
var Suffixes = [...]string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

var (
	// ErrNotModule is returned for a file that is not an ELF kernel module.
	ErrNotModule = errors.New("not a kernel module")
	// ErrTooLarge is returned for a module past MaxModuleSize.
	ErrTooLarge = fmt.Errorf("module larger than %d MiB uncompressed", MaxModuleSize>>20)
)

// Module is what depmod learns from one module file.
type Module struct {
	Name string // from the file name, dashes as underscores: hv_storvsc
	Path string // relative to lib/modules/VERSION: kernel/drivers/scsi/hv_storvsc.ko.xz

	Depends  []string // modinfo depends=: the modules whose symbols it uses
	Aliases  []string // modinfo alias=, as written
	SoftDeps []string // modinfo softdep=: "pre: crc32c post: ..."
	WeakDeps []string // modinfo weakdep=
	Symbols  []string // the symbols it exports
}

// NameOf is the module name of a module file's path: its base name without
// the suffix, dashes as underscores, as kmod names modules.
func NameOf(file string) (string, bool) {
	base := path.Base(file)
	for _, s := range Suffixes {
		if name, ok := strings.CutSuffix(base, s); ok && name != "" {
			return strings.ReplaceAll(name, "-", "_"), true
		}
	}
	return "", false
}

// Read reads the module at relPath (relative to lib/modules/VERSION) from
// r, decompressing it as its suffix says.
func Read(relPath string, r io.Reader) (*Module, error) {
	name, ok := NameOf(relPath)
	if !ok {
		return nil, fmt.Errorf("%s: %w: no module suffix (%s)", relPath, ErrNotModule, strings.Join(Suffixes[:], ", "))
	}
	b, err := decompress(relPath, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", relPath, err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", relPath, ErrNotModule, err)
	}
	m := &Module{Name: name, Path: relPath}
	if err := m.readInfo(f); err != nil {
		return nil, fmt.Errorf("%s: %w", relPath, err)
	}
	m.Symbols = exported(f)
	return m, nil
}

func decompress(relPath string, r io.Reader) ([]byte, error) {
	var err error
	switch path.Ext(relPath) {
	case ".xz":
		r, err = xz.NewReader(r)
	case ".zst":
		var d *zstd.Decoder
		d, err = zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxModuleSize))
		if err == nil {
			defer d.Close()
			r = d
		}
	case ".gz":
		r, err = gzip.NewReader(r)
	}
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxModuleSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxModuleSize {
		return nil, ErrTooLarge
	}
	return b, nil
}

// readInfo reads the .modinfo section: NUL-separated key=value strings.
func (m *Module) readInfo(f *elf.File) error {
	s := f.Section(".modinfo")
	if s == nil {
		return fmt.Errorf("%w: no .modinfo section", ErrNotModule)
	}
	data, err := s.Data()
	if err != nil {
		return fmt.Errorf("reading .modinfo: %w", err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		key, val, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch key {
		case "depends":
			for _, d := range strings.Split(val, ",") {
				if d != "" {
					m.Depends = append(m.Depends, strings.ReplaceAll(d, "-", "_"))
				}
			}
		case "alias":
			m.Aliases = append(m.Aliases, val)
		case "softdep":
			m.SoftDeps = append(m.SoftDeps, val)
		case "weakdep":
			m.WeakDeps = append(m.WeakDeps, val)
		}
	}
	return nil
}

// crcPrefix marks, in a module built with MODVERSIONS, the symbol holding
// an exported symbol's CRC.
const crcPrefix = "__crc_"

// exported lists the symbols a module exports as libkmod finds them: the
// symbols named by their __crc_ twins, else the names in
// __ksymtab_strings.
func exported(f *elf.File) []string {
	var syms []string
	if all, err := f.Symbols(); err == nil {
		for _, s := range all {
			if name, ok := strings.CutPrefix(s.Name, crcPrefix); ok {
				syms = append(syms, name)
			}
		}
	}
	if len(syms) > 0 {
		return syms
	}
	s := f.Section("__ksymtab_strings")
	if s == nil {
		return nil
	}
	data, err := s.Data()
	if err != nil {
		return nil
	}
	for _, name := range bytes.Split(data, []byte{0}) {
		if len(name) > 0 {
			syms = append(syms, string(name))
		}
	}
	return syms
}
