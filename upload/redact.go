package upload

import (
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces secrets in what vhdprep prints.
const Redacted = "REDACTED"

// secretValue matches the secret parts of SAS URLs (sig=) and connection
// strings (AccountKey=, SharedAccessSignature=, whose value holds & but
// never ;).
var secretValue = regexp.MustCompile(`(?i)(\b(?:sig|AccountKey|SharedAccessKey)=)[^&;\s"'<>]+|(\bSharedAccessSignature=)[^;\s"'<>]+`)

// Redact removes SAS signatures and account keys from s.
func Redact(s string) string {
	return secretValue.ReplaceAllString(s, "${1}${2}"+Redacted)
}

// redactor removes the secrets of one target, wherever they appear: as
// parameters, and also bare, as a server's message might quote them.
type redactor struct{ secrets []string }

func newRedactor(t Target) redactor {
	var r redactor
	add := func(s string) {
		if len(s) >= 8 { // shorter is no secret, and would redact innocent text
			r.secrets = append(r.secrets, s, url.QueryEscape(s))
		}
	}
	for _, u := range []string{t.BlobURL, t.ManagedDiskSAS} {
		if parsed, err := url.Parse(u); err == nil {
			add(parsed.Query().Get("sig"))
		}
	}
	for part := range strings.SplitSeq(t.ConnectionString, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && (strings.EqualFold(k, "AccountKey") || strings.EqualFold(k, "SharedAccessSignature")) {
			add(v)
			if q, err := url.ParseQuery(v); err == nil {
				add(q.Get("sig"))
			}
		}
	}
	return r
}

func (r redactor) string(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, Redacted)
	}
	return Redact(s)
}

// error returns err with its message redacted; errors.Is and As still see
// through it.
func (r redactor) error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.string(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
