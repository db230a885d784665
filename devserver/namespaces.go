package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

// readyTimeout bounds the wait for the frontend to answer after Start.
const readyTimeout = 60 * time.Second

// reconcileNamespaces brings every --namespace to the requested retention and
// search attributes through the running frontend. It is needed at every start:
// CreateNamespaces does nothing for a namespace that already exists in a
// reused DB file, so without this an old DB would keep a stale retention and
// miss search attributes added to the command line since it was created.
func reconcileNamespaces(ctx context.Context, addr string, o *options, logger log.Logger) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(o.token)))
	if err != nil {
		return fmt.Errorf("cannot dial the frontend at %s: %w", addr, err)
	}
	defer conn.Close()
	wf := workflowservice.NewWorkflowServiceClient(conn)
	op := operatorservice.NewOperatorServiceClient(conn)

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := waitFrontend(ctx, wf, o.namespaces); err != nil {
		return fmt.Errorf("frontend at %s did not answer within %s: %w", addr, readyTimeout, err)
	}
	for _, ns := range o.namespaces {
		if err := setRetention(ctx, wf, ns, o.retention, logger); err != nil {
			return fmt.Errorf("namespace %s: cannot set retention: %w", ns, err)
		}
		if err := addSearchAttributes(ctx, op, ns, o.searchAttrs, logger); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		if err := waitSearchAttributes(ctx, wf, ns, o.searchAttrs); err != nil {
			return fmt.Errorf("namespace %s: search attributes not usable within %s: %w", ns, readyTimeout, err)
		}
	}
	return nil
}

// waitFrontend polls until the frontend answers and knows every namespace:
// Start returns before the gRPC handlers and the namespace registry are ready.
func waitFrontend(ctx context.Context, wf workflowservice.WorkflowServiceClient, namespaces []string) error {
	for {
		err := probe(ctx, wf, namespaces)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func probe(ctx context.Context, wf workflowservice.WorkflowServiceClient, namespaces []string) error {
	if _, err := wf.GetSystemInfo(ctx, &workflowservice.GetSystemInfoRequest{}); err != nil {
		return err
	}
	for _, ns := range namespaces {
		if _, err := wf.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
			return err
		}
	}
	return nil
}

// setRetention updates the retention only when it differs, so a normal
// restart writes nothing.
func setRetention(ctx context.Context, wf workflowservice.WorkflowServiceClient, ns string, want time.Duration, logger log.Logger) error {
	desc, err := wf.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	if err != nil {
		return err
	}
	have := desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
	if have == want {
		return nil
	}
	logger.Info("updating namespace retention", tag.WorkflowNamespace(ns),
		tag.NewDurationTag("from", have), tag.NewDurationTag("to", want))
	_, err = wf.UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
		Namespace: ns,
		Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(want)},
	})
	return err
}

// addSearchAttributes registers the attributes the namespace lacks. One that
// exists with another type is an error: a type cannot be changed in place,
// and queries against it would silently misbehave.
func addSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, ns string,
	want map[string]enumspb.IndexedValueType, logger log.Logger) error {
	if len(want) == 0 {
		return nil
	}
	list, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return fmt.Errorf("cannot list search attributes: %w", err)
	}
	have := list.GetCustomAttributes()
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		got, ok := have[name]
		if !ok {
			if _, system := list.GetSystemAttributes()[name]; system {
				return fmt.Errorf("search attribute %s is a system attribute", name)
			}
			missing[name] = typ
			continue
		}
		if got != typ {
			return fmt.Errorf("search attribute %s exists with type %s, not %s; a type cannot be changed", name, got, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, 0, len(missing))
	for n := range missing {
		names = append(names, n)
	}
	sort.Strings(names)
	logger.Info("adding search attributes", tag.WorkflowNamespace(ns), tag.NewStringsTag("names", names))
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        ns,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("cannot add search attributes %v: %w", names, err)
	}
	return nil
}

// waitSearchAttributes polls until the frontend accepts a query on every
// wanted attribute. Attributes added to an existing namespace reach the
// frontend's namespace cache only at its next refresh (every 2 s), and until
// then a run started with them is refused; clients start runs as soon as the
// server says it is ready. Queries and starts resolve attributes through the
// same cache, so a query that passes means a start will too.
func waitSearchAttributes(ctx context.Context, wf workflowservice.WorkflowServiceClient, ns string, want map[string]enumspb.IndexedValueType) error {
	if len(want) == 0 {
		return nil
	}
	var terms []string
	for name := range want {
		terms = append(terms, "`"+name+"` IS NULL")
	}
	sort.Strings(terms)
	req := &workflowservice.ListWorkflowExecutionsRequest{Namespace: ns, PageSize: 1, Query: strings.Join(terms, " OR ")}
	for {
		_, err := wf.ListWorkflowExecutions(ctx, req)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
