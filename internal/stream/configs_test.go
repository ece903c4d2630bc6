package stream

import (
	"errors"
	"testing"
)

// FuzzConfigValue: every config's validator (topic and group) never panics, and a value it
// accepts is returned in a canonical form that it accepts unchanged (what is stored reads back
// as stored).
func FuzzConfigValue(f *testing.F) {
	for _, s := range []string{"", " ", "0", "-1", "-2", " 5 ", "1.5", "0.25", "1", "1e3", "NaN", "TRUE", "false",
		"delete", "compact", "delete,compact", " delete ", "*", "0:1, 1:2", "0-1", "lz4", "CreateTime",
		"9223372036854775807", "9223372036854775808", "2147483648", "-131072", "by_duration:PT1H", "by_duration:P", "latest"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, defs := range [][]configDef{configDefs, groupConfigDefs} {
			for _, d := range defs {
				c, err := d.validate(s)
				if err != nil {
					continue
				}
				again, err := d.validate(c)
				if err != nil || again != c {
					t.Fatalf("%s: %q accepted as %q, which reads back as %q, %v", d.Name, s, c, again, err)
				}
			}
		}
	})
}

// TestConfigDefaultsValid: every default passes its own validation in canonical form, except
// where Kafka's default is a value yard refuses to be set (none today).
func TestConfigDefaultsValid(t *testing.T) {
	for _, defs := range [][]configDef{configDefs, groupConfigDefs} {
		for i, d := range defs {
			if i > 0 && defs[i-1].Name >= d.Name {
				t.Errorf("%s: definitions not sorted by name", d.Name)
			}
			if c, err := d.validate(d.Default); err != nil || c != d.Default {
				t.Errorf("%s: default %q reads as %q, %v", d.Name, d.Default, c, err)
			}
		}
	}
	if err := checkGroupConfigs(nil); err != nil {
		t.Errorf("default group configs conflict: %v", err)
	}
	if err := checkTopicConfigs(nil, nil); err != nil {
		t.Errorf("default topic configs conflict: %v", err)
	}
	if err := checkTopicConfigs(map[string]string{"min.compaction.lag.ms": "10"}, map[string]string{"log.cleaner.max.compaction.lag.ms": "5"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("min over an inherited max: %v, want ErrInvalidConfig", err)
	}
}
