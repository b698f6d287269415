package extension

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vhdprep/vhdprep/agent/extconf"
)

// Agent describes the guest agent in the status document.
type Agent struct {
	Name, Version string
	Status        string // "Ready" or "NotReady"
	Message       string
	// OS information for guestOSInfo.
	ComputerName, OSName, OSVersion string
}

// heartbeatStale is how old heartbeat.log may be before the handler counts
// as unresponsive (WALinuxAgent's 10 minutes).
const heartbeatStale = 10 * time.Minute

// The status document, in WALinuxAgent's v1 shape (vm_status_to_v1).
type (
	vmStatus struct {
		Version           string          `json:"version"`
		TimestampUTC      string          `json:"timestampUTC"`
		AggregateStatus   aggregateStatus `json:"aggregateStatus"`
		GuestOSInfo       guestOSInfo     `json:"guestOSInfo"`
		SupportedFeatures []keyValue      `json:"supportedFeatures"`
	}
	aggregateStatus struct {
		GuestAgentStatus       guestAgentStatus `json:"guestAgentStatus"`
		HandlerAggregateStatus []handlerStatus  `json:"handlerAggregateStatus"`
	}
	guestAgentStatus struct {
		Version          string   `json:"version"`
		Status           string   `json:"status"`
		FormattedMessage *Message `json:"formattedMessage"`
	}
	handlerStatus struct {
		HandlerVersion        string                 `json:"handlerVersion"`
		HandlerName           string                 `json:"handlerName"`
		Status                string                 `json:"status"`
		Code                  int                    `json:"code"`
		UseExactVersion       bool                   `json:"useExactVersion"`
		FormattedMessage      *Message               `json:"formattedMessage,omitempty"`
		RuntimeSettingsStatus *runtimeSettingsStatus `json:"runtimeSettingsStatus,omitempty"`
	}
	runtimeSettingsStatus struct {
		SettingsStatus settingsStatus `json:"settingsStatus"`
		SequenceNumber int            `json:"sequenceNumber"`
		// ExtensionName names the extension of a multi-config handler
		// this status is about; such a handler has one handler status per
		// extension.
		ExtensionName string `json:"extensionName,omitempty"`
	}
	settingsStatus struct {
		Status       ExtensionStatus `json:"status"`
		Version      string          `json:"version"`
		TimestampUTC string          `json:"timestampUTC"`
	}
	guestOSInfo struct {
		ComputerName string `json:"computerName"`
		OSName       string `json:"osName"`
		OSVersion    string `json:"osVersion"`
		Version      string `json:"version"`
	}
	keyValue struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	}
)

// StatusDocument builds the aggregate status document for the status blob
// from what the last Process did and the handlers' status files now.
func (p *Processor) StatusDocument(a Agent, now time.Time) []byte {
	ts := now.UTC().Format(time.RFC3339)
	doc := vmStatus{
		Version:      "1.1",
		TimestampUTC: ts,
		AggregateStatus: aggregateStatus{
			GuestAgentStatus:       guestAgentStatus{Version: a.Version, Status: a.Status, FormattedMessage: english(a.Message)},
			HandlerAggregateStatus: []handlerStatus{},
		},
		GuestOSInfo:       guestOSInfo{ComputerName: a.ComputerName, OSName: a.OSName, OSVersion: a.OSVersion, Version: a.Version},
		SupportedFeatures: []keyValue{},
	}
	for name, version := range supportedFeatures {
		doc.SupportedFeatures = append(doc.SupportedFeatures, keyValue{name, version})
	}
	p.mu.Lock()
	results := slices.Clone(p.results)
	p.mu.Unlock()
	// A multi-config handler all of whose extensions were deleted is
	// reported on its own, as WALinuxAgent does when no extension has status.
	var allGone []result
	for _, r := range results {
		if r.gone && !slices.ContainsFunc(results, func(o result) bool { return o.name == r.name && !o.gone }) &&
			!slices.ContainsFunc(allGone, func(o result) bool { return o.name == r.name }) {
			allGone = append(allGone, r)
		}
	}
	for _, r := range allGone {
		doc.AggregateStatus.HandlerAggregateStatus = append(doc.AggregateStatus.HandlerAggregateStatus,
			handlerStatus{HandlerVersion: r.version, HandlerName: r.name, Status: "NotReady", UseExactVersion: true, FormattedMessage: english("Plugin disabled")})
	}
	for _, r := range results {
		if (r.state == extconf.StateUninstall && r.ready) || r.gone {
			continue // gone: nothing left to report
		}
		hs := handlerStatus{HandlerVersion: r.version, HandlerName: r.name, Status: "Ready", Code: r.code, UseExactVersion: true}
		switch {
		case !r.done:
			// Under way: the handler is as its last processing left it.
			if h := (&handler{dir: r.dir}); h.state() != StateEnabled {
				hs.Status = "NotReady"
			}
		case r.extFailed:
			// As WALinuxAgent: the handler is Ready while any of its
			// extensions is enabled; the extension's status tells the failure.
			hs.Code = 0
			if h := (&handler{dir: r.dir}); h.state() != StateEnabled {
				hs.Status, hs.FormattedMessage = "NotReady", english("Plugin installed but not enabled")
			}
		case !r.ready:
			hs.Status, hs.FormattedMessage = "NotReady", english(r.message)
		case r.heartbeat:
			hs.Status, hs.FormattedMessage = heartbeat(r.dir, now)
		}
		if r.hasSettings {
			name := r.name
			if r.ext != "" {
				name = r.ext
			}
			st := readStatus(r.statusPath(), name, r.operation)
			if r.done && !r.ready && st.Status == StatusTransitioning {
				// It failed before it could write a status file.
				st.Status, st.Code, st.FormattedMessage = StatusError, r.code, english(r.message)
			}
			hs.RuntimeSettingsStatus = &runtimeSettingsStatus{
				SettingsStatus: settingsStatus{Status: st, Version: "1.0", TimestampUTC: ts},
				SequenceNumber: r.seq,
				ExtensionName:  r.ext,
			}
		}
		doc.AggregateStatus.HandlerAggregateStatus = append(doc.AggregateStatus.HandlerAggregateStatus, hs)
	}
	b, _ := json.Marshal(doc)
	return b
}

// heartbeat reads heartbeat.log for a handler that reports one: its
// status when fresh, Unresponsive when stale or missing.
func heartbeat(dir string, now time.Time) (string, *Message) {
	name := filepath.Join(dir, "heartbeat.log")
	fi, err := os.Stat(name)
	if err != nil || now.Sub(fi.ModTime()) > heartbeatStale || fi.Size() > MaxStatusFileSize {
		return "Unresponsive", english("the handler's heartbeat is missing or older than 10 minutes")
	}
	b, _ := os.ReadFile(name)
	var hb []struct {
		Heartbeat struct {
			Status           string   `json:"status"`
			FormattedMessage *Message `json:"formattedMessage"`
		} `json:"heartbeat"`
	}
	if json.Unmarshal(b, &hb) != nil || len(hb) == 0 {
		return "Unresponsive", english("the handler's heartbeat is not valid JSON")
	}
	switch s := hb[0].Heartbeat.Status; s {
	case "ready", "Ready":
		return "Ready", hb[0].Heartbeat.FormattedMessage
	default:
		return "NotReady", hb[0].Heartbeat.FormattedMessage
	}
}
