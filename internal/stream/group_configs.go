package stream

// Group configs: Kafka's per-group dynamic configs (DescribeConfigs and
// IncrementalAlterConfigs with resource type GROUP), kept in the catalog by group ID. yard
// stores, validates and reports them as Kafka does; its group coordinator does not act on them
// yet (its session timeouts and heartbeat intervals are broker-wide).

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/yardmq/yard/internal/catalog"
)

// groupConfigDefs is every group config of Kafka 4.x's GroupConfig that yard knows, sorted by
// name, with Kafka's defaults (its broker-level group.* defaults) and validation, including
// the broker-level bounds Kafka checks a group's value against (at their defaults).
var groupConfigDefs = []configDef{
	{"consumer.heartbeat.interval.ms", "group.consumer.heartbeat.interval.ms", "5000", ConfigTypeInt,
		"heartbeat interval given to the members of a consumer group" + ignored, intBetween(5000, 15000)},
	{"consumer.session.timeout.ms", "group.consumer.session.timeout.ms", "45000", ConfigTypeInt,
		"timeout to detect consumer group member failures" + ignored, intBetween(45000, 60000)},
	{"share.auto.offset.reset", "", "latest", ConfigTypeString,
		"where a share group starts: latest, earliest or by_duration:<ISO 8601 duration>" + ignored, shareAutoOffsetReset},
	{"share.delivery.count.limit", "group.share.delivery.count.limit", "5", ConfigTypeInt,
		"delivery attempts of a record to a share group" + ignored, intBetween(2, 10)},
	{"share.heartbeat.interval.ms", "group.share.heartbeat.interval.ms", "5000", ConfigTypeInt,
		"heartbeat interval given to the members of a share group" + ignored, intBetween(5000, 15000)},
	{"share.isolation.level", "", "read_uncommitted", ConfigTypeString,
		"which transactional records a share group delivers" + ignored, oneOf("read_committed", "read_uncommitted")},
	{"share.partition.max.record.locks", "group.share.partition.max.record.locks", "2000", ConfigTypeInt,
		"records a share partition may have acquired at once" + ignored, intBetween(100, 4000)},
	{"share.record.lock.duration.ms", "group.share.record.lock.duration.ms", "30000", ConfigTypeInt,
		"record acquisition lock duration of a share group" + ignored, intBetween(15000, 60000)},
	{"share.session.timeout.ms", "group.share.session.timeout.ms", "45000", ConfigTypeInt,
		"timeout to detect share group member failures" + ignored, intBetween(45000, 60000)},
	{"streams.heartbeat.interval.ms", "group.streams.heartbeat.interval.ms", "5000", ConfigTypeInt,
		"heartbeat interval given to the members of a streams group" + ignored, intBetween(5000, 15000)},
	{"streams.initial.rebalance.delay.ms", "group.streams.initial.rebalance.delay.ms", "3000", ConfigTypeInt,
		"delay before a new streams group's first assignment" + ignored, intAtLeast(0)},
	{"streams.num.standby.replicas", "group.streams.num.standby.replicas", "0", ConfigTypeInt,
		"standby replicas of each streams task" + ignored, intBetween(0, 2)},
	{"streams.session.timeout.ms", "group.streams.session.timeout.ms", "45000", ConfigTypeInt,
		"timeout to detect streams group member failures" + ignored, intBetween(45000, 60000)},
}

func findGroupDef(name string) (*configDef, bool) {
	for i := range groupConfigDefs {
		if groupConfigDefs[i].Name == name {
			return &groupConfigDefs[i], true
		}
	}
	return nil, false
}

// isoDuration is what Java's Duration.parse accepts, without signs (a negative duration is
// refused, as Kafka refuses it).
var isoDuration = regexp.MustCompile(`(?i)^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:[.,]\d{0,9})?S)?)?$`)

func shareAutoOffsetReset(s string) (string, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "latest", "earliest":
		return strings.ToLower(t), nil
	}
	if d, ok := strings.CutPrefix(strings.ToLower(t), "by_duration:"); ok {
		if d != "p" && d != "pt" && !strings.HasSuffix(d, "t") && isoDuration.MatchString(d) {
			return t, nil
		}
		return "", fmt.Errorf("%q: by_duration needs a non-negative ISO 8601 duration (PnDTnHnMn.nS)", s)
	}
	return "", fmt.Errorf("%q is not latest, earliest or by_duration:<duration>", s)
}

// checkGroupConfigs applies Kafka's checks across group configs to the effective values: a
// session timeout must exceed its heartbeat interval.
func checkGroupConfigs(set map[string]string) error {
	eff := map[string]int64{}
	for _, e := range effectiveGroupConfigs(set) {
		if e.Type == ConfigTypeInt {
			eff[e.Name], _ = parseLong(e.Value, 32)
		}
	}
	for _, kind := range []string{"consumer", "share", "streams"} {
		session, hb := kind+".session.timeout.ms", kind+".heartbeat.interval.ms"
		if eff[session] <= eff[hb] {
			return fmt.Errorf("%w: %s must be greater than %s", ErrInvalidConfig, session, hb)
		}
	}
	return nil
}

// effectiveGroupConfigs lists every group config: the group's value or the default, with
// synonyms as Kafka lists them (the group-level name, then the broker default).
func effectiveGroupConfigs(set map[string]string) []ConfigEntry {
	out := make([]ConfigEntry, 0, len(groupConfigDefs))
	for _, d := range groupConfigDefs {
		e := ConfigEntry{Name: d.Name, Type: d.Type, Doc: d.Doc, Value: d.Default, Source: SourceDefault}
		if v, ok := set[d.Name]; ok {
			e.Value, e.Source = v, SourceGroup
		}
		e.Synonyms = []ConfigSynonym{{d.Name, e.Value, e.Source}}
		if d.BrokerName != "" {
			e.Synonyms = append(e.Synonyms, ConfigSynonym{d.BrokerName, d.Default, SourceDefault})
		}
		out = append(out, e)
	}
	return out
}

// GroupConfigs returns the effective configs of a group (which need not exist).
func (m *Manager) GroupConfigs(group string) []ConfigEntry {
	return effectiveGroupConfigs(m.cat.Snapshot().GroupConfigs[group])
}

// AlterGroupConfigs replaces a group's whole set of configs (legacy AlterConfigs semantics).
func (m *Manager) AlterGroupConfigs(group string, configs map[string]string, validateOnly bool) error {
	return m.alterGroup(group, func(map[string]string) (map[string]string, error) { return configs, nil }, validateOnly)
}

// IncrementalAlterGroupConfigs applies operations to a group's configs.
func (m *Manager) IncrementalAlterGroupConfigs(group string, ops []ConfigOp, validateOnly bool) error {
	return m.alterGroup(group, func(cur map[string]string) (map[string]string, error) { return applyOps(cur, ops, findGroupDef) }, validateOnly)
}

func (m *Manager) alterGroup(group string, change func(map[string]string) (map[string]string, error), validateOnly bool) error {
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	next, err := change(m.cat.Snapshot().GroupConfigs[group])
	if err != nil {
		return err
	}
	if next, err = normalizeConfigs(next, "group", findGroupDef); err != nil {
		return err
	}
	if err := checkGroupConfigs(next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	err = m.cat.Update(func(s *catalog.State) error {
		if len(next) == 0 {
			delete(s.GroupConfigs, group)
			return nil
		}
		if s.GroupConfigs == nil {
			s.GroupConfigs = map[string]map[string]string{}
		}
		s.GroupConfigs[group] = next
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot alter configs of group %q: %w", group, err)
	}
	return nil
}
