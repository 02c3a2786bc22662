package templatecheck

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestAlarmTopicKeyLetsCloudWatchAndTheFunctionsPublish: a topic the
// alarms notify must be encrypted with a customer-managed key of this
// template whose policy lets CloudWatch use it. The AWS managed
// alias/aws/sns key cannot be granted to CloudWatch, so alarms on such a
// topic deploy cleanly and never deliver. Every function that publishes
// to the topic needs the key too.
func TestAlarmTopicKeyLetsCloudWatchAndTheFunctionsPublish(t *testing.T) {
	tpl := loadTemplate(t)
	topics := map[string]bool{}
	for _, a := range tpl.resourcesOfType("AWS::CloudWatch::Alarm") {
		if acts := get(a, "Properties", "AlarmActions"); acts != nil {
			for _, n := range acts.Content {
				if id := refTarget(n); id != "" {
					topics[id] = true
				}
			}
		}
	}
	if !topics["NotificationTopic"] {
		t.Fatal("no alarm notifies NotificationTopic")
	}
	kmsPair := []string{"kms:GenerateDataKey*", "kms:Decrypt"}
	for _, topicID := range sortedKeys(topics) {
		topic := resource(t, tpl, topicID, "AWS::SNS::Topic")
		keyRef := get(topic, "Properties", "KmsMasterKeyId")
		keyID := refTarget(keyRef)
		if keyID == "" {
			t.Errorf("%s: KmsMasterKeyId %s must be !Ref of an AWS::KMS::Key in this template (CloudWatch alarms cannot use alias/aws/sns)", topicID, describe(keyRef))
			continue
		}
		key := resource(t, tpl, keyID, "AWS::KMS::Key")
		if literal(get(key, "Properties", "EnableKeyRotation")) != "true" {
			t.Errorf("%s: EnableKeyRotation must be true", keyID)
		}
		cloudWatch := false
		for _, st := range get(key, "Properties", "KeyPolicy", "Statement").Content {
			if literal(get(st, "Effect")) == "Allow" && slices.Contains(principals(get(st, "Principal", "Service")), "cloudwatch.amazonaws.com") {
				acts := actions(st)
				cloudWatch = slices.Contains(acts, kmsPair[0]) && slices.Contains(acts, kmsPair[1])
			}
		}
		if !cloudWatch {
			t.Errorf("%s: the key policy must allow cloudwatch.amazonaws.com %v", keyID, kmsPair)
		}

		// Roles allowed to use the key, through a managed policy naming it.
		keyUsers := map[string]bool{}
		for _, p := range tpl.resourcesOfType("AWS::IAM::ManagedPolicy") {
			for _, st := range get(p, "Properties", "PolicyDocument", "Statement").Content {
				res, _ := getAtt(get(st, "Resource"))
				acts := actions(st)
				if literal(get(st, "Effect")) == "Allow" && res == keyID && slices.Contains(acts, kmsPair[0]) && slices.Contains(acts, kmsPair[1]) {
					for _, r := range policyRoles(p) {
						keyUsers[r] = true
					}
				}
			}
		}
		// Roles that publish: a managed policy allowing sns:Publish on the
		// topic, or SAM's SNSPublishMessagePolicy naming it.
		for id, p := range tpl.resourcesOfType("AWS::IAM::ManagedPolicy") {
			for _, st := range get(p, "Properties", "PolicyDocument", "Statement").Content {
				if literal(get(st, "Effect")) == "Allow" && slices.Contains(actions(st), "sns:Publish") && refTarget(get(st, "Resource")) == topicID {
					for _, r := range policyRoles(p) {
						if !keyUsers[r] {
							t.Errorf("%s lets %s publish to %s but no policy grants it %v on %s", id, r, topicID, kmsPair, keyID)
						}
					}
				}
			}
		}
		for _, name := range sortedKeys(tpl.functions) {
			fn := tpl.functions[name]
			pols := get(fn.node, "Properties", "Policies")
			if pols == nil || !strings.Contains(describe(pols), "SNSPublishMessagePolicy") || !strings.Contains(describe(pols), topicID) {
				continue
			}
			if !keyUsers[fn.logicalID+"Role"] {
				t.Errorf("%s publishes to %s (SNSPublishMessagePolicy) but no policy grants it %v on %s", fn.logicalID, topicID, kmsPair, keyID)
			}
		}
	}
}

// principals is a Principal's Service (or AWS) entry, one or many.
func principals(n *yaml.Node) []string {
	if n != nil && n.Kind == yaml.SequenceNode {
		return literals(n)
	}
	return []string{literal(n)}
}
