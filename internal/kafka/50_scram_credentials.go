package kafka

// DescribeUserScramCredentials 0 (50) and AlterUserScramCredentials 0 (51). yard does not
// serve SASL/SCRAM yet: every named user is answered UNSUPPORTED_SASL_MECHANISM with a message,
// a clear error at once instead of a dropped connection, and a description of every user is
// empty (there are none). The error is per user, never response-wide: librdkafka 2.16 frees a
// response-wide error message it did not allocate and crashes.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const noScramMessage = "SASL/SCRAM is not supported by this broker yet: there are no SCRAM credentials"

func handleDescribeUserScramCredentials(rc *reqCtx, req *kmsg.DescribeUserSCRAMCredentialsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if len(req.Users) == 0 { // every user: there are none
		resp.Results = []kmsg.DescribeUserSCRAMCredentialsResponseResult{}
		return respond(resp), nil
	}
	for _, u := range req.Users {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User, r.ErrorCode, r.ErrorMessage = u.Name, kerr.UnsupportedSaslMechanism.Code, strPtr(noScramMessage)
		resp.Results = append(resp.Results, r)
	}
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
