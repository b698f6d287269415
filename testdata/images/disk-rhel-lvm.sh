# A RHEL 9-like disk: GPT with an ESP (vfat, EFI/BOOT/BOOTX64.EFI), an XFS
# /boot with BLS entries and grubenv, and an LVM PV holding VG "rhel" with an
# XFS root LV and a swap LV (written by lvmgen: lvm2 needs devices).
# tools: sfdisk mkfs.xfs mkfs.vfat mcopy mkswap go
. testdata/images/lib.sh
. testdata/images/rootfs-rhel.sh
out=$1
work=$(mktemp -d)
esp_uuid=5A1E-0001
boot_uuid=7b0a0000-0000-4000-8000-00000000b007
root_uuid=7b0a0000-0000-4000-8000-0000000000ff

truncate -s 32M "$work/esp"
mkfs.vfat -F 16 -n EFI -i ${esp_uuid/-/} "$work/esp" >/dev/null
printf 'MZ not a real loader' > "$work/BOOTX64.EFI"
mmd -i "$work/esp" ::/EFI ::/EFI/BOOT ::/EFI/redhat
mcopy -i "$work/esp" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$work/esp" "$work/BOOTX64.EFI" ::/EFI/redhat/shimx64.efi

mkdir "$work/boot" "$work/root"
rhel_boot_tree "$work/boot"
xfs_proto "$work/boot" > "$work/boot.proto"
truncate -s 64M "$work/bootfs"
mkfs.xfs -q -f -L boot -m uuid="$boot_uuid" -p "$work/boot.proto" "$work/bootfs"

rhel_root_tree "$work/root" "$boot_uuid" "$esp_uuid"
xfs_proto "$work/root" > "$work/proto"
truncate -s 320M "$work/rootfs"
mkfs.xfs -q -f -L root -m uuid="$root_uuid" -p "$work/proto" "$work/rootfs"
truncate -s 16M "$work/swap"
mkswap -q -L swap -U 7b0a0000-0000-4000-8000-00000000005a "$work/swap"
go run ./testdata/images/lvmgen -out "$work/pv" -size 400M -vg rhel -id-seed rhel \
  -lv root="$work/rootfs" -lv swap="$work/swap"

truncate -s 500M "$out"
sfdisk -q "$out" <<SFDISK
label: gpt
label-id: 7B0A0000-0000-4000-8000-0000000D15C0
size=32MiB, type=U, name="EFI System Partition", uuid=7B0A0000-0000-4000-8000-0000000000E1
size=64MiB, type=L, name=boot, uuid=7B0A0000-0000-4000-8000-0000000000B0
size=400MiB, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=lvm, uuid=7B0A0000-0000-4000-8000-00000000001F
SFDISK
place "$work/esp" "$out" $MiB
place "$work/bootfs" "$out" $((33 * MiB))
place "$work/pv" "$out" $((97 * MiB))
rm -rf "$work"
