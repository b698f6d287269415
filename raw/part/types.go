package part

import "fmt"

// GPT partition type GUIDs that rules look for.
const (
	guidESP       = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	guidBIOSBoot  = "21686148-6449-6e6f-744e-656564454649"
	guidLinuxFS   = "0fc63daf-8483-4772-8e79-3d69d8477de4"
	guidLinuxSwap = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"
	guidLinuxLVM  = "e6d6d379-f507-44c2-a23c-238f2a3df928"
)

var gptTypeNames = map[string]string{
	guidESP:                                "EFI System",
	guidBIOSBoot:                           "BIOS boot",
	guidLinuxFS:                            "Linux filesystem",
	guidLinuxSwap:                          "Linux swap",
	guidLinuxLVM:                           "Linux LVM",
	"a19d880f-05fc-4d3b-a006-743f0f84911e": "Linux RAID",
	"bc13c2ff-59e6-4262-a352-b275fd6f7172": "Linux extended boot",
	"4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "Linux root (x86-64)",
	"b921b045-1df0-41c3-af44-4c6f280d3fae": "Linux root (ARM64)",
	"933ac7e1-2eb4-4f13-b844-0e14e2aef915": "Linux home",
	"ca7d7ccb-63ed-4c53-861c-1742536059cc": "Linux LUKS",
	"ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
	"e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
}

var mbrTypeNames = map[byte]string{
	0x05: "Extended", 0x0f: "Extended (LBA)", 0x85: "Linux extended",
	0x06: "FAT16", 0x07: "HPFS/NTFS/exFAT", 0x0b: "FAT32", 0x0c: "FAT32 (LBA)", 0x0e: "FAT16 (LBA)",
	0x82: "Linux swap", 0x83: "Linux", 0x8e: "Linux LVM", 0xfd: "Linux RAID",
	0xee: "GPT protective", 0xef: "EFI System",
}

func mbrType(t byte) string { return fmt.Sprintf("0x%02x", t) }

func mbrTypeName(t byte) string {
	if n, ok := mbrTypeNames[t]; ok {
		return n
	}
	return "unknown"
}

func gptTypeName(guid string) string {
	if n, ok := gptTypeNames[guid]; ok {
		return n
	}
	return "unknown"
}

func isExtendedType(t string) bool { return t == "0x05" || t == "0x0f" || t == "0x85" }
