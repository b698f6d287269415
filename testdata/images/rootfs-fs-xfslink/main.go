// Command rootfs-fs-xfslink gives a remote symlink written by a mkfs.xfs
// 6.1 protofile the version 5 block header the kernel writes: that mkfs
// stores the target bare, and xfs_repair then clears the inode.
//
//	go run ./testdata/images/rootfs-fs-xfslink -img IMG -ino N -block FSB_BYTE_OFFSET -daddr SECTOR -size LEN -uuid UUID
package main

import (
	"encoding/binary"
	"encoding/hex"
	"flag"
	"hash/crc32"
	"log"
	"os"
	"strings"
)

const (
	symlinkMagic = 0x58534C4D // "XSLM"
	headerSize   = 56
	crcOffset    = 12
	blockSize    = 4096
)

func main() {
	img := flag.String("img", "", "XFS image")
	ino := flag.Uint64("ino", 0, "the symlink's inode number")
	block := flag.Int64("block", 0, "byte offset of the symlink's block")
	daddr := flag.Uint64("daddr", 0, "the block's address in 512-byte sectors")
	size := flag.Int("size", 0, "the target's length")
	uuid := flag.String("uuid", "", "the filesystem's UUID")
	flag.Parse()
	id, err := hex.DecodeString(strings.ReplaceAll(*uuid, "-", ""))
	if err != nil || len(id) != 16 || *size <= 0 || *size > blockSize-headerSize {
		log.Fatalf("bad -uuid %q or -size %d", *uuid, *size)
	}
	f, err := os.OpenFile(*img, os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	old := make([]byte, blockSize)
	if _, err := f.ReadAt(old, *block); err != nil {
		log.Fatal(err)
	}
	b := make([]byte, blockSize)
	be := binary.BigEndian
	be.PutUint32(b[0:], symlinkMagic)
	be.PutUint32(b[8:], uint32(*size))
	copy(b[16:32], id)
	be.PutUint64(b[32:], *ino)
	be.PutUint64(b[40:], *daddr)
	copy(b[headerSize:], old[:*size])
	binary.LittleEndian.PutUint32(b[crcOffset:], crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
	if _, err := f.WriteAt(b, *block); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
