package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/console"
)

const (
	pagesRoute  = "GET /platform-admin/{proxy+}"
	eventsRoute = "POST " + tenantCredentials + "/events"
)

// ConsolePages serves the console's pages and assets (a public route: a
// page holds no data).
func (d Deps) ConsolePages() Handler {
	return d.guard("console", func(_ context.Context, req events.APIGatewayV2HTTPRequest, _ caller) (events.APIGatewayV2HTTPResponse, error) {
		if d.Console == nil {
			return events.APIGatewayV2HTTPResponse{}, errors.New("console pages: not wired")
		}
		r := d.Console.Serve(console.Prefix+req.PathParameters["proxy"], req.QueryStringParameters)
		return events.APIGatewayV2HTTPResponse{StatusCode: r.Status, Headers: r.Header, Body: r.Body}, nil
	})
}

// viewingBody is the body of POST .../smtp-credentials/events.
type viewingBody struct {
	Event string `json:"event"`
	Field string `json:"field"`
}

// ViewingEvent records that the console showed or copied a field of a
// credential it retrieved (access: Routes). It answers 204.
func (d Deps) ViewingEvent() Handler {
	return d.guard("console", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		var b viewingBody
		if err := decodeBody(req, &b); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if err := d.Credentials.RecordViewing(ctx, req.PathParameters["tenant_id"], b.Event, b.Field, actor(req, c.Principal)); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent, Headers: SecurityHeaders()}, nil
	})
}
