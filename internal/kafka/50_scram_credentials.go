package kafka

// DescribeUserScramCredentials 0 (50) and AlterUserScramCredentials 0 (51). yard does not
// serve SASL/SCRAM yet, so both are answered UNSUPPORTED_SASL_MECHANISM with a message: a
// clear error at once instead of a dropped connection.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const noScramMessage = "SASL/SCRAM is not supported by this broker yet: there are no SCRAM credentials"

func handleDescribeUserScramCredentials(rc *reqCtx, req *kmsg.DescribeUserSCRAMCredentialsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedSaslMechanism.Code, strPtr(noScramMessage)
	return respond(resp), nil
}

func handleAlterUserScramCredentials(rc *reqCtx, req *kmsg.AlterUserSCRAMCredentialsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	add := func(user string) {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User, r.ErrorCode, r.ErrorMessage = user, kerr.UnsupportedSaslMechanism.Code, strPtr(noScramMessage)
		resp.Results = append(resp.Results, r)
	}
	for _, d := range req.Deletions {
		add(d.Name)
	}
	for _, u := range req.Upsertions {
		add(u.Name)
	}
	return respond(resp), nil
}
