package kafka

// ApiVersions, versions 0-4. A request newer than 4 gets UNSUPPORTED_VERSION in a v0-shaped
// body that still lists every key we serve, so the client retries with a version we know.
// Its response header is always v0 (see responseHeaderFlexible). v3+ list the features
// (KIP-584) yard has: transaction.version, supported 0-2 and finalized at the coordinator's
// level (txn.Config.TransactionVersion; a level 0 is not listed, as Kafka lists it), which
// is how Kafka 4 clients decide to use KIP-890's transaction version 2.

import (
	"encoding/binary"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/txn"
)

func (apis apiTable) versionsList() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.advertisedMin, a.max
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}

func handleApiVersions(rc *reqCtx, req *kmsg.ApiVersionsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if req.Version >= 3 && (req.ClientSoftwareName == "" || req.ClientSoftwareVersion == "") {
		// Kafka validates these (they appear in its metrics); so do we, with its error.
		resp.ErrorCode = kerr.InvalidRequest.Code
		return respond(resp), nil
	}
	resp.ApiKeys = rc.s.apis.versionsList()
	if tc := rc.txn(); tc != nil {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = transactionVersionFeature, 0, txn.MaxTransactionVersion
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		if level := tc.TransactionVersion(); level > 0 {
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = transactionVersionFeature, level, level
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
			resp.FinalizedFeaturesEpoch = finalizedFeaturesEpoch
		}
	}
	return respond(resp), nil
}

const (
	transactionVersionFeature = "transaction.version"
	// finalizedFeaturesEpoch is the epoch of the finalized features: they only change with
	// a restart, so one epoch serves (clients take features of a higher epoch than they
	// know; -1, the default, means none).
	finalizedFeaturesEpoch = 1
)

// v0Reply is the UNSUPPORTED_VERSION answer, encoded as v0 whatever the request's version.
type v0Reply struct{ apis apiTable }

func unsupportedApiVersions(s *Server) reply { return v0Reply{s.apis} }

func (r v0Reply) writeTo(c *conn, hdr *reqHeader) error {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = r.apis.versionsList()
	b := binary.BigEndian.AppendUint32(make([]byte, 4, 512), uint32(hdr.correlationID))
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_, err := c.writer().Write(b)
	return err
}
