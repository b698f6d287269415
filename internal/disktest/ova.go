package disktest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// streamFormat is how an OVF says its disk is a streamOptimized VMDK.
const streamFormat = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

// OVF is an OVF as vSphere writes it, naming the disk files in order.
func OVF(files ...string) []byte {
	var refs, disks strings.Builder
	for i, f := range files {
		fmt.Fprintf(&refs, "    <File ovf:href=%q ovf:id=\"file%d\" ovf:size=\"1\"/>\n", f, i)
		fmt.Fprintf(&disks, "    <Disk ovf:capacity=\"1\" ovf:capacityAllocationUnits=\"byte * 2^30\" ovf:diskId=\"vmdisk%d\" ovf:fileRef=\"file%d\" ovf:format=%q/>\n", i, i, streamFormat)
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
` + refs.String() + `  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
` + disks.String() + `  </DiskSection>
</Envelope>
`)
}

// Tar writes the members, name then bytes, in order.
func Tar(t testing.TB, members ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for i := 0; i < len(members); i += 2 {
		data := members[i+1].([]byte)
		if err := w.WriteHeader(&tar.Header{Name: members[i].(string), Mode: 0o644, Size: int64(len(data)), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	w.Close()
	return b.Bytes()
}
