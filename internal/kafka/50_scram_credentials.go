package kafka

// DescribeUserScramCredentials 0 (50) and AlterUserScramCredentials 0 (51), over the user
// store (the same users AMQP and the admin API see). Mechanisms are Kafka's numbers:
// 1 SCRAM-SHA-256, 2 SCRAM-SHA-512. Errors are per user, never response-wide: librdkafka
// 2.16 frees a response-wide error message it did not allocate and crashes. Without a
// store every named user is answered UNSUPPORTED_SASL_MECHANISM.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth"
)

const noScramMessage = "SASL/SCRAM is not enabled on this broker: there is no user store"

func scramMechanism(n int8) (auth.Mechanism, bool) {
	switch n {
	case 1:
		return auth.ScramSHA256, true
	case 2:
		return auth.ScramSHA512, true
	}
	return "", false
}

func scramMechanismNumber(m auth.Mechanism) int8 {
	if m == auth.ScramSHA512 {
		return 2
	}
	return 1
}

func describeUser(u auth.User) kmsg.DescribeUserSCRAMCredentialsResponseResult {
	r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
	r.User = u.Name
	for _, m := range auth.Mechanisms {
		if c, ok := u.Credentials[m]; ok {
			ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
			ci.Mechanism, ci.Iterations = scramMechanismNumber(m), int32(c.Iterations)
			r.CredentialInfos = append(r.CredentialInfos, ci)
		}
	}
	return r
}

func handleDescribeUserScramCredentials(rc *reqCtx, req *kmsg.DescribeUserSCRAMCredentialsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	users := rc.s.cfg.Users
	resp.Results = []kmsg.DescribeUserSCRAMCredentialsResponseResult{}
	if !rc.authorizedCluster(kmsg.ACLOperationDescribe) { // as Kafka: Describe on the cluster
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp), nil
	}
	if len(req.Users) == 0 {
		if users != nil {
			for _, u := range users.Users() {
				if len(u.Credentials) > 0 {
					resp.Results = append(resp.Results, describeUser(u))
				}
			}
		}
		return respond(resp), nil
	}
	seen := map[string]int{}
	for _, u := range req.Users {
		seen[u.Name]++
	}
	for _, ru := range req.Users {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = ru.Name
		u, ok := auth.User{}, false
		if users != nil {
			u, ok = users.User(ru.Name)
		}
		switch {
		case users == nil:
			r.ErrorCode, r.ErrorMessage = kerr.UnsupportedSaslMechanism.Code, strPtr(noScramMessage)
		case seen[ru.Name] > 1:
			r.ErrorCode, r.ErrorMessage = kerr.DuplicateResource.Code, strPtr("Cannot describe SCRAM credentials for the same user twice in a single request: "+ru.Name)
		case !ok || len(u.Credentials) == 0:
			r.ErrorCode, r.ErrorMessage = kerr.ResourceNotFound.Code, strPtr("Attempt to describe a user credential that does not exist: "+ru.Name)
		default:
			r = describeUser(u)
		}
		resp.Results = append(resp.Results, r)
	}
	return respond(resp), nil
}

func handleAlterUserScramCredentials(rc *reqCtx, req *kmsg.AlterUserSCRAMCredentialsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	if !rc.authorizedCluster(kmsg.ACLOperationAlter) { // as Kafka: Alter on the cluster
		seen := map[string]bool{}
		for _, n := range append(scramNames(req.Deletions, nil), scramNames(nil, req.Upsertions)...) {
			if !seen[n] {
				seen[n] = true
				r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
				r.User, r.ErrorCode = n, kerr.ClusterAuthorizationFailed.Code
				resp.Results = append(resp.Results, r)
			}
		}
		return respond(resp), nil
	}
	users := rc.s.cfg.Users
	// One result per user, in first-seen order; the first error of a user is its result.
	type result struct {
		code int16
		msg  string
	}
	var order []string
	results := map[string]*result{}
	fail := func(user string, e *kerr.Error, msg string) {
		r := results[user]
		if r == nil {
			r = &result{}
			results[user] = r
			order = append(order, user)
		}
		if r.code == 0 {
			r.code, r.msg = e.Code, msg
		}
	}
	ok := func(user string) {
		if results[user] == nil {
			results[user] = &result{}
			order = append(order, user)
		}
	}
	// A user+mechanism named twice (in either list) is refused, as Kafka.
	count := map[string]int{}
	for _, d := range req.Deletions {
		count[d.Name+"\x00"+fmt.Sprint(d.Mechanism)]++
	}
	for _, u := range req.Upsertions {
		count[u.Name+"\x00"+fmt.Sprint(u.Mechanism)]++
	}
	check := func(name string, mech int8) (auth.Mechanism, bool) {
		m, known := scramMechanism(mech)
		switch {
		case users == nil:
			fail(name, kerr.UnsupportedSaslMechanism, noScramMessage)
		case name == "":
			fail(name, kerr.UnacceptableCredential, "Username must not be empty")
		case !known:
			fail(name, kerr.UnsupportedSaslMechanism, fmt.Sprintf("Unknown SCRAM mechanism %d", mech))
		case count[name+"\x00"+fmt.Sprint(mech)] > 1:
			fail(name, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		default:
			return m, true
		}
		return "", false
	}
	for _, d := range req.Deletions {
		m, good := check(d.Name, d.Mechanism)
		if !good {
			continue
		}
		if err := users.DeleteCredential(d.Name, m); err != nil {
			if errors.Is(err, auth.ErrNotFound) {
				fail(d.Name, kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
			} else {
				fail(d.Name, kerr.UnknownServerError, err.Error())
			}
			continue
		}
		ok(d.Name)
	}
	for _, u := range req.Upsertions {
		m, good := check(u.Name, u.Mechanism)
		if !good {
			continue
		}
		switch {
		case u.Iterations < auth.MinIterations:
			fail(u.Name, kerr.UnacceptableCredential, fmt.Sprintf("Too few iterations: %d (at least %d)", u.Iterations, auth.MinIterations))
			continue
		case u.Iterations > auth.MaxIterations:
			fail(u.Name, kerr.UnacceptableCredential, fmt.Sprintf("Too many iterations: %d (at most %d)", u.Iterations, auth.MaxIterations))
			continue
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			// Kafka takes a salted password of any length (it is an HMAC key; kafka-go's
			// tests send 18 bytes for SCRAM-SHA-512); only nothing is refused.
			fail(u.Name, kerr.UnacceptableCredential, "Salt and salted password must not be empty")
			continue
		}
		if err := users.SetCredential(u.Name, m, auth.CredentialFromSalted(m, u.Salt, u.SaltedPassword, int(u.Iterations))); err != nil {
			fail(u.Name, kerr.UnacceptableCredential, err.Error())
			continue
		}
		ok(u.Name)
	}
	for _, name := range order {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = name
		if res := results[name]; res.code != 0 {
			r.ErrorCode, r.ErrorMessage = res.code, strPtr(res.msg)
		}
		resp.Results = append(resp.Results, r)
	}
	return respond(resp), nil
}

// scramNames lists the users an AlterUserScramCredentials request names, in order.
func scramNames(dels []kmsg.AlterUserSCRAMCredentialsRequestDeletion, ups []kmsg.AlterUserSCRAMCredentialsRequestUpsertion) []string {
	var out []string
	for _, d := range dels {
		out = append(out, d.Name)
	}
	for _, u := range ups {
		out = append(out, u.Name)
	}
	return out
}
