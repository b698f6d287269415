# A dracut initramfs built in hostonly mode (dracut's default on RHEL and
# Fedora) on a KVM build host whose root is an XFS logical volume on a
# virtio disk, laid out as dracut 059 writes it: an uncompressed
# early-microcode archive, then the main archive in zstd, with merged /usr
# (bin, sbin and lib are symlinks into usr), the host's own drivers only
# (virtio_blk, virtio_pci, dm-mod, xfs) as .ko.xz under
# usr/lib/modules/KVER with dracut's module indexes, the LVM tools
# (usr/sbin/lvm) and the hostonly command line (etc/cmdline.d). No
# hv_vmbus, hv_storvsc, scsi_mod or sd_mod: it boots on KVM, not Hyper-V.
# tools: cpio xz zstd
. testdata/images/lib.sh
. testdata/images/initrd-lib.sh
out=$1 t=$(mktemp -d)
kver=5.14.0-362.el9.x86_64
m=$t/main
mods=$m/usr/lib/modules/$kver
initrd_ucode "$t/early"
mkdir -p "$mods"
mkdir -p "$m"/usr/{bin,sbin,lib/systemd,lib/dracut} "$m"/{etc/cmdline.d,etc/conf.d,dev,proc,sys,run,tmp,var}
ln -s usr/bin "$m/bin"; ln -s usr/sbin "$m/sbin"; ln -s usr/lib "$m/lib"; ln -s usr/lib "$m/lib64"
ln -s usr/lib/systemd/systemd "$m/init"
printf '\177ELF systemd' > "$m/usr/lib/systemd/systemd"
for p in bash udevadm kmod; do printf '\177ELF %s' "$p" > "$m/usr/bin/$p"; done
ln -s bash "$m/usr/bin/sh"
for p in modprobe lsmod; do ln -s ../bin/kmod "$m/usr/sbin/$p"; done
printf '\177ELF lvm' > "$m/usr/sbin/lvm"
printf '#!/bin/sh\n' > "$m/usr/sbin/lvm_scan"
chmod 755 "$m"/usr/bin/* "$m"/usr/sbin/lvm "$m"/usr/sbin/lvm_scan
printf ' rd.lvm.lv=rhel/root \n' > "$m/etc/cmdline.d/90lvm.conf"
printf ' root=/dev/mapper/rhel-root rootfstype=xfs rootflags=rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota \n' > "$m/etc/cmdline.d/95root-dev.conf"
printf 'systemdutildir="/usr/lib/systemd"\n' > "$m/etc/conf.d/systemd.conf"
printf 'NAME="Red Hat Enterprise Linux"\nVERSION="9.3 (Plow) dracut-057-44.git20230822.el9"\n' > "$m/etc/initrd-release"
printf 'bash\nsystemd\nkernel-modules\nlvm\nrootfs-block\nudev-rules\nusrmount\nbase\nfs-lib\nshutdown\n' > "$m/usr/lib/dracut/modules.txt"
: > "$m/usr/lib/dracut/hostonly-files"
for f in drivers/block/virtio_blk drivers/virtio/virtio_pci drivers/virtio/virtio_ring drivers/md/dm-mod fs/xfs/xfs lib/libcrc32c; do
  mkdir -p "$mods/kernel/${f%/*}"
  { printf '\177ELF'; head -c 3000 /dev/zero | tr '\0' x; } > "$mods/kernel/$f.ko"
  xz --check=crc32 "$mods/kernel/$f.ko"
  echo "kernel/$f.ko.xz:"
done > "$mods/modules.dep"
printf 'kernel/fs/ext4/ext4.ko\nkernel/drivers/virtio/virtio.ko\nkernel/crypto/crc32c_generic.ko\n' > "$mods/modules.builtin"
: > "$mods/modules.builtin.modinfo"; : > "$mods/modules.softdep"; : > "$mods/modules.alias"
{ initrd_cpio "$t/early"; initrd_cpio "$m" | zstd -q -15; } > "$out"
