package notify

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// SNSPublisher is the part of the SNS client SNS uses.
type SNSPublisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// SNS publishes messages to one topic. Kind, tenant and attributes become
// message attributes, so subscriptions can filter on them.
type SNS struct {
	Client   SNSPublisher
	TopicARN string
}

// Notify implements Notifier.
func (s SNS) Notify(ctx context.Context, m Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	attrs := map[string]types.MessageAttributeValue{
		"kind": {DataType: aws.String("String"), StringValue: aws.String(m.Kind)},
	}
	if m.TenantID != "" {
		attrs["tenant_id"] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(m.TenantID)}
	}
	for k, v := range m.Attrs {
		if v != "" {
			attrs[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	body := m.Body
	if body == "" {
		body = m.Subject
	}
	if _, err := s.Client.Publish(ctx, &sns.PublishInput{
		TopicArn:          aws.String(s.TopicARN),
		Subject:           aws.String(m.Subject),
		Message:           aws.String(body),
		MessageAttributes: attrs,
	}); err != nil {
		return fmt.Errorf("notify: publish to SNS: %w", err)
	}
	return nil
}
