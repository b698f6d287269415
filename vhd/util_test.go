package vhd

import (
	"encoding/json"
	"strconv"
)

func itoa(n int64) string                 { return strconv.FormatInt(n, 10) }
func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
