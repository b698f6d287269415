package extension

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Status file limits, WALinuxAgent's: a file over MaxStatusFileSize is
// still read, but its message is cut to maxStatusMessage and its substatus
// fields to maxSubstatusField, within the size limit. Files beyond
// maxStatusFileRead are not read at all.
const (
	MaxStatusFileSize = 128 << 10
	maxStatusMessage  = 1024
	maxSubstatusField = 10 << 10
	maxStatusFileRead = 16 << 20
	truncatedSuffix   = " ... [TRUNCATED]"
)

// Extension status values (WALinuxAgent's ExtensionStatusValue).
const (
	StatusTransitioning = "transitioning"
	StatusError         = "error"
	StatusSuccess       = "success"
	StatusWarning       = "warning"
)

func validStatus(s string) bool {
	return s == StatusTransitioning || s == StatusError || s == StatusSuccess || s == StatusWarning
}

// Message is a formattedMessage.
type Message struct {
	Lang    string `json:"lang"`
	Message string `json:"message"`
}

func english(s string) *Message { return &Message{Lang: "en-US", Message: s} }

// SubStatus is one substatus entry of an extension's status.
type SubStatus struct {
	Name             string   `json:"name"`
	Status           string   `json:"status"`
	Code             int      `json:"code"`
	FormattedMessage *Message `json:"formattedMessage"`
}

// ExtensionStatus is one extension's status as the aggregate document carries it.
type ExtensionStatus struct {
	Name                     string      `json:"name"`
	ConfigurationAppliedTime string      `json:"configurationAppliedTime,omitempty"`
	Operation                string      `json:"operation"`
	Status                   string      `json:"status"`
	Code                     int         `json:"code"`
	FormattedMessage         *Message    `json:"formattedMessage"`
	SubStatus                []SubStatus `json:"substatus"`
}

type fileMessage struct {
	Lang    *string `json:"lang"`
	Message *string `json:"message"`
}

type fileStatus struct {
	Name                     string          `json:"name"`
	Operation                string          `json:"operation"`
	Status                   *string         `json:"status"`
	Code                     json.RawMessage `json:"code"`
	ConfigurationAppliedTime string          `json:"configurationAppliedTime"`
	FormattedMessage         *fileMessage    `json:"formattedMessage"`
	SubStatus                []*struct {
		Name             json.RawMessage `json:"name"`
		Status           *string         `json:"status"`
		Code             json.RawMessage `json:"code"`
		FormattedMessage *fileMessage    `json:"formattedMessage"`
	} `json:"substatus"`
}

// errMalformed marks a status file WALinuxAgent reports as invalid
// (PluginSettingsStatusInvalid).
var errMalformed = errors.New("invalid status file")

// ParseStatus parses a status file as WALinuxAgent's parse_ext_status
// does: a list whose first element's status.status is required (an
// unknown value counts as error), codes are numbers or numeric strings, a
// formattedMessage needs lang and message. An empty list is no status
// (ok false). A file over MaxStatusFileSize has its fields truncated.
func ParseStatus(doc []byte) (st ExtensionStatus, ok bool, err error) {
	var list []struct {
		Status *fileStatus `json:"status"`
	}
	if err := json.Unmarshal(doc, &list); err != nil {
		return st, false, fmt.Errorf("%w: not a JSON list: %v", errMalformed, err)
	}
	if len(list) == 0 {
		return st, false, nil
	}
	s := list[0].Status
	if s == nil {
		return st, false, fmt.Errorf("%w: missing status key", errMalformed)
	}
	if s.Status == nil {
		return st, false, fmt.Errorf("%w: missing status/status key", errMalformed)
	}
	st = ExtensionStatus{Name: s.Name, Operation: s.Operation, Status: *s.Status, Code: parseCode(s.Code),
		ConfigurationAppliedTime: s.ConfigurationAppliedTime, SubStatus: []SubStatus{}}
	if !validStatus(st.Status) {
		st.Status = StatusError
	}
	if st.FormattedMessage, err = parseMessage(s.FormattedMessage); err != nil {
		return st, false, err
	}
	for _, sub := range s.SubStatus {
		if sub == nil {
			continue // some extensions write null entries
		}
		if sub.Status == nil || !validStatus(*sub.Status) {
			return st, false, fmt.Errorf("%w: a substatus has no valid status", errMalformed)
		}
		m, err := parseMessage(sub.FormattedMessage)
		if err != nil {
			return st, false, err
		}
		st.SubStatus = append(st.SubStatus, SubStatus{Name: jsonText(sub.Name), Status: *sub.Status, Code: parseCode(sub.Code), FormattedMessage: m})
	}
	if len(doc) > MaxStatusFileSize {
		st.truncate()
	}
	return st, true, nil
}

func parseMessage(m *fileMessage) (*Message, error) {
	if m == nil {
		return nil, nil
	}
	if m.Lang == nil || m.Message == nil {
		return nil, fmt.Errorf("%w: formattedMessage needs lang and message", errMalformed)
	}
	return &Message{Lang: *m.Lang, Message: *m.Message}, nil
}

// jsonText is a JSON string's value, or the JSON itself for other values
// (WALinuxAgent passes a substatus name through whatever its type).
func jsonText(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// truncate cuts an oversized status down to MaxStatusFileSize: the message
// to 1 KiB, then substatus names and messages to 10 KiB each while they
// fit, dropping the substatus entries that no longer do.
func (st *ExtensionStatus) truncate() {
	budget := MaxStatusFileSize
	if st.FormattedMessage != nil {
		st.FormattedMessage.Message = cut(st.FormattedMessage.Message, maxStatusMessage)
		budget -= len(st.FormattedMessage.Message)
	}
	kept := st.SubStatus[:0]
	for _, s := range st.SubStatus {
		s.Name = cut(s.Name, maxSubstatusField)
		if s.FormattedMessage != nil {
			m := *s.FormattedMessage
			m.Message = cut(m.Message, maxSubstatusField)
			s.FormattedMessage = &m
			budget -= len(m.Message)
		}
		if budget -= len(s.Name); budget < 0 {
			break
		}
		kept = append(kept, s)
	}
	st.SubStatus = kept
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len(truncatedSuffix)] + truncatedSuffix
}

// parseCode reads 1 or "1"; anything else is 0, as WALinuxAgent defaults it.
func parseCode(raw json.RawMessage) int {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	return 0
}

// readStatus reads a status file as WALinuxAgent's collect_ext_status
// does: a missing one is transitioning, an unreadable one error
// (PluginUnknownFailure), a malformed one error (PluginSettingsStatusInvalid).
func readStatus(path, name, operation string) ExtensionStatus {
	st := ExtensionStatus{Name: name, Operation: operation, SubStatus: []SubStatus{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		st.Status = StatusTransitioning
		st.FormattedMessage = english("This status is being reported by the Guest Agent since no status file was reported by extension " + name)
		return st
	}
	var doc []byte
	if err == nil {
		doc, err = io.ReadAll(io.LimitReader(f, maxStatusFileRead+1))
		f.Close()
		if err == nil && len(doc) > maxStatusFileRead {
			err = fmt.Errorf("more than %d bytes", maxStatusFileRead)
		}
	}
	if err != nil {
		st.Status, st.Code = StatusError, -1
		st.FormattedMessage = english(fmt.Sprintf("We couldn't read any status for %s extension: %s: %v", name, path, err))
		return st
	}
	parsed, ok, err := ParseStatus(doc)
	switch {
	case err != nil:
		st.Status, st.Code = StatusError, codeStatusFileError
		st.FormattedMessage = english(fmt.Sprintf("Could not get a valid status from the extension %s: %s: %v", name, path, err))
		return st
	case !ok:
		st.Status = StatusTransitioning
		return st
	}
	if parsed.Name == "" {
		parsed.Name = name
	}
	if parsed.Operation == "" {
		parsed.Operation = operation
	}
	return parsed
}
