package adversarial_test

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offsets in a Kafka RecordBatch v2 header (see the protocol's message format).
const (
	batchLengthAt     = 8  // int32: bytes after this field
	batchCRCAt        = 17 // uint32: CRC-32C of everything from the attributes on
	batchAttributesAt = 21 // int16: codec in the low 3 bits
	batchProducerAt   = 43 // int64 producer id, int16 epoch, int32 base sequence
	batchCountAt      = 57 // int32: number of records
	batchHeaderLen    = 61
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// mutateProduceRecords is the structure-aware mutation of a Produce request: it damages the
// records inside one batch (or its codec or record count) and then makes the batch's length and
// CRC right again, so that the request passes every check a checksum can make. This is the
// input that poisons a partition if a broker stores what it does not walk. It returns nil when
// frame is not a Produce request it can decode.
func mutateProduceRecords(rng *rand.Rand, frame []byte) []byte {
	body := frame[4:]
	if len(body) < 10 || binary.BigEndian.Uint16(body) != 0 {
		return nil
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(int16(binary.BigEndian.Uint16(body[2:])))
	r := kbin.Reader{Src: body[8:]}
	r.NullableString() // client id
	if req.IsFlexible() {
		for n := r.Uvarint(); n > 0; n-- { // header tagged fields
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
	}
	if r.Complete() != nil {
		return nil
	}
	hdrLen := len(body) - len(r.Src)
	if err := req.ReadFrom(r.Src); err != nil || len(req.Topics) == 0 || len(req.Topics[0].Partitions) == 0 {
		return nil
	}
	p := &req.Topics[0].Partitions[0]
	b := append([]byte(nil), p.Records...)
	if len(b) < batchHeaderLen {
		return nil
	}
	// Replayed under the recorded producer id, the batch would be taken for a retry of the one
	// already written and answered without being stored: make it a non-idempotent batch.
	for i := batchProducerAt; i < batchCountAt; i++ {
		b[i] = 0xff
	}
	switch rng.IntN(5) {
	case 0: // an unknown codec, or another codec than the one the records were written with
		attrs := binary.BigEndian.Uint16(b[batchAttributesAt:])
		binary.BigEndian.PutUint16(b[batchAttributesAt:], attrs&^7|uint16(rng.IntN(8)))
	case 1: // a record count that disagrees with the records
		copy(b[batchCountAt:], interesting[8+rng.IntN(4)])
	default: // the records themselves: lengths, varints, header counts, keys, values
		b = append(b[:batchHeaderLen:batchHeaderLen], mutateBody(rng, b[batchHeaderLen:])...)
	}
	binary.BigEndian.PutUint32(b[batchLengthAt:], uint32(len(b)-batchLengthAt-4))
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttributesAt:], castagnoli))
	p.Records = b
	out := append([]byte(nil), body[:hdrLen]...)
	out = req.AppendTo(out)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(out))), out...)
}
