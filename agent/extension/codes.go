package extension

// Error codes reported in handler and extension status, as WALinuxAgent's
// ExtensionErrorCodes numbers them.
const (
	codeProcessingError       = 1000
	codeManifestDownloadError = 1001
	codeHandlerManifestError  = 1003
	codePackageDownloadFailed = 1004
	codePackageExtractFailed  = 1005
	codeInstallFailed         = 1007
	codeUpdateFailed          = 1008
	codeEnableFailed          = 1009
	codeDisableFailed         = 1010
	codeScriptTimedOut        = 1011
	codeStatusFileError       = 1012
)
