package lint

// Sources of the rules' rationale, as RULES.md names them.
const (
	srcGen      = "AZ-GEN"     // Azure: Prepare Linux for imaging (generic distributions)
	srcDistro   = "AZ-DISTRO"  // Azure's per-distribution guides
	srcNoAgent  = "AZ-NOAGENT" // Azure: images without a provisioning agent
	srcMkt      = "MKT"        // Azure Marketplace VM certification tests
	srcLISA     = "LISA"       // Microsoft LISA test suite
	srcExt      = "AZ-EXT"     // Azure VM extensions overview
	srcPractice = "practice"
)

// Catalog returns every rule, in report order. Each call returns fresh
// values, so callers may not change one another's rules.
func Catalog() []*Rule {
	return []*Rule{
		// Container
		{ID: "VHD001", Area: AreaContainer, Severity: Error, Title: "the file is a fixed VHD",
			Why: "Azure takes only fixed-size VHDs", Source: srcGen,
			Fix: "vhdprep convert IMAGE FIXED", Check: checkFixedVHD},
		{ID: "VHD002", Area: AreaContainer, Severity: Error, Title: "the VHD footer is valid",
			Why: "cookie, checksum, features, version, data offset and disk type are checked on upload", Source: srcMkt,
			Fix: "vhdprep convert IMAGE FIXED (rewrites the footer)", Check: checkFooter},
		{ID: "VHD003", Area: AreaContainer, Severity: Error, Title: "the footer's current size equals the file length minus 512",
			Why: "a truncated or over-long VHD has lost data, or holds more than readers see; Azure rejects it", Source: srcGen,
			Fix: "vhdprep convert --accept-data-loss IMAGE FIXED keeps what is left (or copy the whole file again)", Check: checkFooterSize},
		{ID: "VHD004", Area: AreaContainer, Severity: Error, Title: "the virtual size is a whole number of MiB",
			Why: "\"the virtual size must be a whole number (in MBs)\"", Source: srcGen,
			Fix: "vhdprep resize IMAGE --align", Check: checkMiBAligned},
		{ID: "VHD005", Area: AreaContainer, Severity: Error, Title: "the size is within Azure's limits",
			Why: "at least 20 MiB; above 1023 GiB is unusual; MBR and Gen1-only disks stop at 2 TiB; no disk above 4095 GiB", Source: srcGen + ", managed disk limits, " + srcMkt,
			Check: checkSizeLimits},
		{ID: "VHD006", Area: AreaContainer, Severity: Warning, Title: "the footer's size agrees with its CHS geometry for every reader",
			Why: "qemu-img 2.2.1-2.5 rounded VHD sizes to the CHS geometry; other readers then see a different size", Source: srcGen,
			Fix: "vhdprep convert IMAGE FIXED (rewrites the footer)", Check: checkCHSSize},

		// Disk layout
		{ID: "DSK001", Area: AreaDisk, Severity: Error, Title: "the partition table is readable and consistent",
			Why: "a resized GPT disk whose backup header was not moved is corrupt to firmware", Source: srcPractice,
			Fix: "vhdprep resize IMAGE --align (moves the backup GPT)", Check: checkPartitionTable},
		{ID: "DSK002", Area: AreaDisk, Severity: Error, Title: "no swap on the OS disk",
			Why: "swap on the OS disk hurts performance and is forbidden for Marketplace images", Source: srcGen + ", " + srcLISA + ", " + srcMkt,
			Fix: "remove the swap partition or volume; put swap on the resource disk (SWP002)", Check: checkNoSwapOnDisk},
		{ID: "DSK003", Area: AreaDisk, Severity: Warning, Title: "no LVM physical volume on the OS disk",
			Why: "identical VG/LV names clash when the OS disk is attached to another VM of the same image", Source: srcGen,
			Check: checkNoLVM},
		{ID: "DSK004", Area: AreaDisk, Severity: Error, Title: "the disk boots as Gen1 (BIOS) and/or Gen2 (UEFI)",
			Why: "Azure boots Gen1 through BIOS and Gen2 through UEFI's fallback path EFI/BOOT/BOOTX64.EFI", Source: srcGen + ", " + srcDistro,
			Check: checkBootable},
		{ID: "DSK005", Area: AreaDisk, Severity: Info, Title: "one root filesystem on the OS disk",
			Why: "certification expects a single root filesystem", Source: srcMkt, Check: checkOneRoot},

		// Kernel command line
		{ID: "KRN001", Area: AreaKernel, Severity: Error, Title: "console=ttyS0 (arm64: ttyAMA0) on the kernel command line",
			Why: "the serial console log is the only boot diagnostic Azure offers", Source: srcGen + ", " + srcLISA + ", " + srcMkt,
			Fixable: true, Options: map[string]string{"console": "the console device to require (default ttyS0, ttyAMA0 on arm64)"}, Check: checkSerialConsole, Repair: repairSerialConsole},
		{ID: "KRN002", Area: AreaKernel, Severity: Warning, Title: "earlyprintk=ttyS0 on the kernel command line",
			Why: "early boot messages reach the serial console", Source: srcGen + ", " + srcMkt, Fixable: true, Check: checkEarlyPrintk, Repair: repairEarlyPrintk},
		{ID: "KRN003", Area: AreaKernel, Severity: Warning, Title: "rootdelay=300 on the kernel command line",
			Why: "gives Azure storage time to appear", Source: srcGen + ", " + srcMkt, Fixable: true, Check: checkRootDelay, Repair: repairRootDelay},
		{ID: "KRN004", Area: AreaKernel, Severity: Warning, Title: "no rhgb, quiet or splash on the kernel command line",
			Why: "they hide boot output from the serial console", Source: srcGen, Fixable: true, Check: checkQuiet, Repair: repairQuiet},
		{ID: "KRN005", Area: AreaKernel, Severity: Info, Title: "no crashkernel=auto",
			Why: "it reserves at least 128 MB of guest memory", Source: srcGen, Fixable: true, Check: checkCrashKernel, Repair: repairCrashKernel},
		{ID: "KRN006", Area: AreaKernel, Severity: Error, Title: "numa=off for kernels older than 2.6.37 (RHEL: 2.6.32-504)",
			Why: "older kernels mishandle NUMA on Hyper-V", Source: srcGen + ", " + srcLISA, Fixable: true, Check: checkNUMAOff, Repair: repairNUMAOff},
		{ID: "KRN007", Area: AreaKernel, Severity: Error, Title: "no libata.atapi_enabled=0 or reserve=0x1f0,0x8",
			Why: "they hide the provisioning media", Source: srcLISA, Fixable: true, Check: checkATAPI, Repair: repairATAPI},
		{ID: "KRN008", Area: AreaKernel, Severity: Warning, Title: "the generated boot configuration agrees with /etc/default/grub",
			Why: "a mismatch means the defaults were edited but never regenerated", Source: srcPractice, Check: checkGeneratedConfig},
		{ID: "KRN009", Area: AreaKernel, Severity: Warning, Title: "root= names the root by UUID, PARTUUID or LABEL",
			Why: "device names differ on Hyper-V", Source: srcDistro, Fixable: true, Check: checkRootByID, Repair: repairRootByID},
		{ID: "KRN010", Area: AreaKernel, Severity: Error, Title: "the installed kernel supports Hyper-V",
			Why: "RHEL 6.0-6.3 kernels need LIS; custom kernels older than 3.8 lack the drivers", Source: srcGen, Check: checkHyperVKernel},

		// Drivers and initramfs
		{ID: "DRV001", Area: AreaDrivers, Severity: Error, Title: "hv_vmbus built in or in the initramfs",
			Why: "without VMBus the kernel sees no Hyper-V devices", Source: srcGen + ", " + srcLISA, Fixable: true, Check: checkVMBus, Repair: repairInitramfsDrivers(checkVMBus, "hv_vmbus")},
		{ID: "DRV002", Area: AreaDrivers, Severity: Error, Title: "hv_storvsc built in or in the initramfs",
			Why: "without it the root disk never appears and boot hangs", Source: srcGen + ", " + srcLISA, Fixable: true, Check: checkStorVSC, Repair: repairInitramfsDrivers(checkStorVSC, "hv_storvsc")},
		{ID: "DRV003", Area: AreaDrivers, Severity: Warning, Title: "hv_netvsc built in or in the initramfs",
			Why: "the synthetic network adapter", Source: srcGen + ", " + srcLISA, Fixable: true, Check: checkNetVSC, Repair: repairInitramfsDrivers(checkNetVSC, "hv_netvsc")},
		{ID: "DRV004", Area: AreaDrivers, Severity: Error, Title: "UDF support present and not disabled",
			Why: "the provisioning media is UDF", Source: srcGen, Fixable: true, Check: checkUDF, Repair: repairModule("DRV004", "udf")},
		{ID: "DRV005", Area: AreaDrivers, Severity: Error, Title: "VFAT support present and not disabled",
			Why: "without vfat, provisioning and UEFI boot fail", Source: srcGen, Fixable: true, Check: checkVFAT, Repair: repairModule("DRV005", "vfat")},
		{ID: "DRV006", Area: AreaDrivers, Severity: Info, Title: "hyperv_keyboard, hid_hyperv present; nvme in the initramfs",
			Why: "console input, and NVMe VM sizes (Gen2)", Source: srcLISA + ", " + srcDistro, Fixable: true, Check: checkHyperVExtras, Repair: repairInitramfsDrivers(checkHyperVExtras, "nvme")},
		{ID: "DRV007", Area: AreaDrivers, Severity: Info, Title: "CONFIG_WATCHDOG and CONFIG_CIFS enabled",
			Why: "essential kernel features on Azure", Source: srcLISA, Check: checkEssentialConfig},
		{ID: "DRV008", Area: AreaDrivers, Severity: Error, Title: "the whole path to the root disk is built in or in the initramfs, per kernel",
			Why: "hv_vmbus, hv_storvsc, scsi_mod, sd_mod, the root filesystem's driver, and dm-mod with the LVM tools for LVM roots; a hostonly dracut built on another hypervisor lacks them", Source: srcGen,
			Fixable: true, Check: checkRootChain, Repair: repairRootChain},

		// Swap and storage
		{ID: "SWP001", Area: AreaStorage, Severity: Error, Title: "no swap activated on the OS disk",
			Why: "swap belongs on the resource disk", Source: srcGen + ", " + srcLISA + ", " + srcMkt, Fixable: true, Check: checkNoSwapInFstab, Repair: repairSwapFstab},
		{ID: "SWP002", Area: AreaStorage, Severity: Warning, Title: "swap, if wanted, goes to the resource disk",
			Why: "the agent or cloud-init creates it on the temporary disk", Source: srcGen, Fixable: true, Check: checkResourceDiskSwap, Repair: repairResourceDiskSwap},
		{ID: "SWP003", Area: AreaStorage, Severity: Warning, Title: "not both waagent and cloud-init format the resource disk",
			Why: "they race for the same disk", Source: srcDistro, Fixable: true, Check: checkOneResourceDiskOwner, Repair: repairOneResourceDiskOwner},
		{ID: "FST001", Area: AreaStorage, Severity: Warning, Title: "fstab names filesystems by UUID, LABEL or PARTUUID; data disks carry nofail",
			Why: "device names change between boots on Azure", Source: srcDistro + ", " + srcLISA, Fixable: true, Check: checkFstabNames, Repair: repairFstabNames},

		// Provisioning and extensions
		{ID: "AGT001", Area: AreaAgent, Severity: Error, Title: "a provisioning agent is installed and enabled",
			Why: "without one nothing reports Ready and Azure reboots the VM", Source: srcGen + ", " + srcNoAgent,
			Fix: "vhdprep agent inject IMAGE", Fixable: true, Check: checkAgent},
		{ID: "AGT002", Area: AreaAgent, Severity: Warning, Title: "WALinuxAgent 2.2.53.1 or newer, or auto-update on",
			Why: "older agents fail certification and extensions", Source: srcLISA + ", " + srcMkt, Fixable: true, Check: checkWAAgentCurrent, Repair: repairAutoUpdate},
		{ID: "AGT003", Area: AreaAgent, Severity: Warning, Title: "Python >= 2.6 and /usr/bin/python where WALinuxAgent or Python extensions are used",
			Why: "WALinuxAgent is a Python program, and extensions fail without /usr/bin/python (Ubuntu 20.04 dropped it), whichever agent runs them", Source: srcGen + ", " + srcExt,
			Fix: "install python3, and python-is-python3 or a /usr/bin/python link to it", Check: checkPythonForAgent},
		{ID: "AGT004", Area: AreaAgent, Severity: Info, Title: "WALinuxAgent next to NetworkManager",
			Why: "older agents conflict with NetworkManager", Source: srcGen, Check: checkAgentNetworkManager},
		{ID: "AGT005", Area: AreaAgent, Severity: Warning, Title: "cloud-init's datasource list includes Azure",
			Why: "cloud-init cannot provision on Azure without it", Source: srcGen, Fixable: true, Check: checkCloudInitAzure, Repair: repairCloudInitAzure},
		{ID: "AGT006", Area: AreaAgent, Severity: Error, Title: "only one agent provisions",
			Why: "two provisioning agents race and one fails", Source: srcDistro, Fixable: true, Check: checkOneProvisioner, Repair: repairOneProvisioner},
		{ID: "AGT007", Area: AreaAgent, Severity: Warning, Title: "what Azure's extensions need in the guest, whatever agent runs them: openssl, and /usr/bin/python or python3",
			Why: "CustomScript and Run Command decrypt their settings with openssl; VMAccess, Log Analytics, Azure Disk Encryption and Linux Diagnostics are Python", Source: srcExt + ", CustomScript's source",
			Fix: "install openssl and python3", Check: checkExtensionPrerequisites},
		{ID: "NET001", Area: AreaAgent, Severity: Error, Title: "a DHCP client is installed and configured for the primary interface",
			Why: "Azure gives addresses by DHCP only", Source: srcNoAgent + ", " + srcGen, Check: checkDHCP},
		{ID: "NET002", Area: AreaAgent, Severity: Error, Title: "no saved firewall rule blocks 168.63.129.16",
			Why: "the wire server at that address serves provisioning and extensions", Source: srcExt, Check: checkWireServerReachable},
		{ID: "NET003", Area: AreaAgent, Severity: Warning, Title: "no persistent-net udev rules",
			Why: "a new VM's NIC gets a new name and no network", Source: srcLISA + ", " + srcDistro, Fixable: true, Check: checkPersistentNet, Repair: repairPersistentNet},
		{ID: "NET004", Area: AreaAgent, Severity: Info, Title: "dhclient timeout of at least 300 s",
			Why: "DHCP can be slow on first boot", Source: srcLISA, Fixable: true, Check: checkDHClientTimeout, Repair: repairDHClientTimeout},

		// SSH, accounts and generalization
		{ID: "SSH001", Area: AreaGeneralize, Severity: Error, Title: "an SSH server is installed and enabled at boot",
			Why: "SSH is how Linux VMs are reached", Source: srcGen, Check: checkSSHServer},
		{ID: "SSH002", Area: AreaGeneralize, Severity: Warning, Title: "ClientAliveInterval between 30 and 235 (180 recommended)",
			Why: "Azure's load balancer drops idle connections after 4 minutes", Source: srcMkt + ", " + srcLISA, Fixable: true, Check: checkClientAlive, Repair: repairClientAlive},
		{ID: "SEC001", Area: AreaGeneralize, Severity: Error, Title: "no account but root has a usable password; no authorized_keys",
			Why: "a generalized image carries no credentials", Source: srcLISA + ", " + srcGen,
			Fix: "vhdprep deprovision IMAGE", Fixable: true, Check: checkNoCredentials},
		{ID: "SEC002", Area: AreaGeneralize, Severity: Warning, Title: "shell histories are empty",
			Why: "histories leak the build's commands", Source: srcLISA + ", " + srcMkt,
			Fix: "vhdprep deprovision IMAGE", Fixable: true, Check: checkHistories},
		{ID: "SEC003", Area: AreaGeneralize, Severity: Warning, Title: "no SSH host keys",
			Why: "every VM must make its own", Source: srcGen,
			Fix: "vhdprep deprovision IMAGE", Fixable: true, Check: checkNoHostKeys},
		{ID: "SEC004", Area: AreaGeneralize, Severity: Warning, Title: "/etc/machine-id empty or absent",
			Why: "clones must not share a machine ID", Source: srcPractice,
			Fix: "vhdprep deprovision IMAGE", Fixable: true, Check: checkMachineID},
		{ID: "SEC005", Area: AreaGeneralize, Severity: Error, Title: "sudoers has no Defaults targetpw and no ALL ALL=(ALL) ALL",
			Why: "targetpw asks for root's password, which Azure users do not have", Source: srcLISA + ", " + srcDistro, Fixable: true, Check: checkSudoers, Repair: repairSudoers},
		{ID: "SEC006", Area: AreaGeneralize, Severity: Warning, Title: "no leftover agent state",
			Why: "a provisioned marker stops the next VM from provisioning", Source: srcGen,
			Fix: "vhdprep deprovision IMAGE", Fixable: true, Check: checkAgentState},
		{ID: "OS001", Area: AreaGeneralize, Severity: Error, Title: "64-bit userland (x86_64 or aarch64)",
			Why: "Azure runs 64-bit guests only", Source: srcLISA + ", " + srcMkt, Check: checkUserland64},
		{ID: "OS002", Area: AreaGeneralize, Severity: Info, Title: describeMinimums() + " where present",
			Why: "older versions fail Azure's TLS endpoints and extensions", Source: srcLISA, Check: checkVersions},
	}
}
