package admin

// RabbitMQ's paginated listings (?page=N&page_size=M&name=F&use_regex=true): what KEDA's
// RabbitMQ scaler asks for when its queueName is a regular expression. Without page the
// listing is the plain array.

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// maxPageSize is RabbitMQ's bound on page_size.
const maxPageSize = 500

// page is a listing's page request and name filter.
type page struct {
	page, size int
	name       string         // filter on names; "" keeps every item
	re         *regexp.Regexp // the filter as a regular expression (use_regex=true)
}

// Page is RabbitMQ's paginated answer.
type Page[T any] struct {
	FilteredCount int `json:"filtered_count"`
	ItemCount     int `json:"item_count"`
	Items         []T `json:"items"`
	Page          int `json:"page"`
	PageCount     int `json:"page_count"`
	PageSize      int `json:"page_size"`
	TotalCount    int `json:"total_count"`
}

// pageOf reads the request's page parameters: paged is false without ?page; ok is false
// after a 400 for bad ones (as RabbitMQ's).
func pageOf(w http.ResponseWriter, r *http.Request) (p page, paged, ok bool) {
	q := r.URL.Query()
	if !q.Has("page") {
		return page{}, false, true
	}
	p = page{page: 1, size: 100, name: q.Get("name")}
	var err error
	if p.page, err = strconv.Atoi(q.Get("page")); err != nil || p.page < 1 {
		badRequest(w, "page must be an integer of 1 or more")
		return page{}, false, false
	}
	if v := q.Get("page_size"); v != "" {
		if p.size, err = strconv.Atoi(v); err != nil || p.size < 1 || p.size > maxPageSize {
			badRequest(w, "page_size must be an integer from 1 to "+strconv.Itoa(maxPageSize))
			return page{}, false, false
		}
	}
	if p.name != "" && q.Get("use_regex") == "true" {
		if p.re, err = regexp.Compile(p.name); err != nil {
			badRequest(w, "name is not a valid regular expression: "+err.Error())
			return page{}, false, false
		}
	}
	return p, true, true
}

// match reports whether a name passes the filter: the regular expression matches somewhere
// in it, or (without use_regex) it contains the filter.
func (p page) match(name string) bool {
	switch {
	case p.re != nil:
		return p.re.MatchString(name)
	case p.name != "":
		return strings.Contains(name, p.name)
	}
	return true
}

// cut returns p's page of the filtered items, total being their count before filtering.
func cut[T any](p page, filtered []T, total int) Page[T] {
	out := Page[T]{FilteredCount: len(filtered), Page: p.page, PageSize: p.size, TotalCount: total,
		PageCount: (len(filtered) + p.size - 1) / p.size, Items: []T{}}
	if from := (p.page - 1) * p.size; from < len(filtered) {
		out.Items = filtered[from:min(from+p.size, len(filtered))]
	}
	out.ItemCount = len(out.Items)
	return out
}
