package extension

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// MaxStatusFileSize bounds status/<seq>.status as WALinuxAgent's
// _MAX_STATUS_FILE_SIZE_IN_BYTES does; a larger file is reported as an
// error instead of being read.
const MaxStatusFileSize = 128 << 10

// Extension status values (WALinuxAgent's ValidExtensionStatus).
const (
	StatusTransitioning = "transitioning"
	StatusError         = "error"
	StatusSuccess       = "success"
	StatusWarning       = "warning"
)

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

// statusFile is the shape of status/<seq>.status: a list whose first
// element holds status. Codes are numbers or numeric strings in the wild.
type statusFile []struct {
	Status *struct {
		Name                     string          `json:"name"`
		Operation                string          `json:"operation"`
		Status                   *string         `json:"status"`
		Code                     json.RawMessage `json:"code"`
		ConfigurationAppliedTime string          `json:"configurationAppliedTime"`
		FormattedMessage         *Message        `json:"formattedMessage"`
		SubStatus                []struct {
			Name             string          `json:"name"`
			Status           string          `json:"status"`
			Code             json.RawMessage `json:"code"`
			FormattedMessage *Message        `json:"formattedMessage"`
		} `json:"substatus"`
	} `json:"status"`
}

// ParseStatus parses a status file the way WALinuxAgent's
// parse_ext_status does: status.status must be one of the valid values;
// codes may be numbers or strings.
func ParseStatus(doc []byte) (ExtensionStatus, error) {
	if len(doc) > MaxStatusFileSize {
		return ExtensionStatus{}, fmt.Errorf("status file is %d bytes, more than %d", len(doc), MaxStatusFileSize)
	}
	var f statusFile
	if err := json.Unmarshal(doc, &f); err != nil {
		return ExtensionStatus{}, fmt.Errorf("status file is not valid JSON: %v", err)
	}
	if len(f) == 0 || f[0].Status == nil {
		return ExtensionStatus{}, errors.New("status file has no status")
	}
	s := f[0].Status
	if s.Status == nil {
		return ExtensionStatus{}, errors.New("status file has no status.status")
	}
	switch *s.Status {
	case StatusTransitioning, StatusError, StatusSuccess, StatusWarning:
	default:
		return ExtensionStatus{}, fmt.Errorf("status file has an invalid status %q", truncate(*s.Status, 64))
	}
	out := ExtensionStatus{
		Name: s.Name, Operation: s.Operation, Status: *s.Status, Code: parseCode(s.Code),
		ConfigurationAppliedTime: s.ConfigurationAppliedTime, FormattedMessage: s.FormattedMessage,
		SubStatus: []SubStatus{},
	}
	for _, sub := range s.SubStatus {
		out.SubStatus = append(out.SubStatus, SubStatus{Name: sub.Name, Status: sub.Status, Code: parseCode(sub.Code), FormattedMessage: sub.FormattedMessage})
	}
	return out, nil
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

// readStatus reads a status file: a missing one is transitioning (the
// handler has not written it yet), an unreadable one an error status.
func readStatus(path, name, operation string) ExtensionStatus {
	st := ExtensionStatus{Name: name, Operation: operation, SubStatus: []SubStatus{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		st.Status, st.FormattedMessage = StatusTransitioning, english("the extension has not written a status file yet")
		return st
	}
	var doc []byte
	if err == nil {
		doc, err = io.ReadAll(io.LimitReader(f, MaxStatusFileSize+1))
		f.Close()
	}
	if err == nil {
		var parsed ExtensionStatus
		if parsed, err = ParseStatus(doc); err == nil {
			if parsed.Name == "" {
				parsed.Name = name
			}
			return parsed
		}
	}
	st.Status, st.Code = StatusError, codeStatusFileError
	st.FormattedMessage = english(fmt.Sprintf("%s: %v", path, err))
	return st
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
