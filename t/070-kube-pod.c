/* 070-kube-pod — pod manifests from a spec (labels, annotations, resources, probe, placement) and pod status -> instance state. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cluster/kube/kube_pod.h"
#include "lib/json.h"
#include "lib/tap.h"

static struct cluster_spec base_spec(void)
{
	struct cluster_spec s;

	memset(&s, 0, sizeof s);
	s.instance_id = 42;
	s.model_id = "eos3b5e";
	s.image = "modelhub/eos3b5e";
	s.image_tag = "1.2";
	s.port = 80;
	s.cpu_request_m = 100;
	s.cpu_limit_m = 1000;
	s.memory_request_mib = 128;
	s.memory_limit_mib = 512;
	s.request_id = "7";
	s.replica_id = "hub-a";
	return s;
}

static const char *str_at(struct json_object *o, const char *path)
{
	char buf[512], *save = NULL, *k;
	struct json_object *cur = o;

	snprintf(buf, sizeof buf, "%s", path);
	for (k = strtok_r(buf, "|", &save); k && cur; k = strtok_r(NULL, "|", &save)) {
		if (k[0] == '#')
			cur = json_object_is_type(cur, json_type_array) ?
				      json_object_array_get_idx(cur, (size_t)atoi(k + 1)) : NULL;
		else
			cur = jx_get(cur, k, NULL);
	}
	if (!cur)
		return NULL;
	return json_object_get_string(cur);
}

static void test_manifest(void)
{
	struct cluster_spec s = base_spec();
	struct kube_pod_opts o;
	struct json_object *pod;
	const char *err = NULL;

	memset(&o, 0, sizeof o);
	o.ns = "models";
	o.grace_seconds = 5;
	pod = kube_pod_manifest(&s, &o, &err);
	ok(pod != NULL, "manifest built");
	is_str(str_at(pod, "metadata|name"), "eos3b5e-42", "name from the model id and the instance id");
	ok(!str_at(pod, "metadata|generateName"), "  not generated (a retried create must meet its own pod)");
	is_str(str_at(pod, "metadata|namespace"), "models", "namespace from the options");
	is_str(str_at(pod, "metadata|labels|app.kubernetes.io/managed-by"), "modelhub", "label managed-by=modelhub");
	is_str(str_at(pod, "metadata|labels|modelhub/model"), "eos3b5e", "label modelhub/model");
	is_str(str_at(pod, "metadata|labels|modelhub/instance"), "42", "label modelhub/instance");
	is_str(str_at(pod, "metadata|annotations|modelhub/request"), "7", "annotation modelhub/request");
	is_str(str_at(pod, "metadata|annotations|modelhub/server"), "hub-a", "annotation modelhub/server");
	is_str(str_at(pod, "spec|containers|#0|image"), "modelhub/eos3b5e:1.2", "image tag honoured");
	is_str(str_at(pod, "spec|containers|#0|resources|requests|cpu"), "100m", "cpu request");
	is_str(str_at(pod, "spec|containers|#0|resources|limits|cpu"), "1000m", "cpu limit");
	is_str(str_at(pod, "spec|containers|#0|resources|requests|memory"), "128Mi",
	       "memory request honoured (not forced to the limit)");
	is_str(str_at(pod, "spec|containers|#0|resources|limits|memory"), "512Mi", "memory limit");
	is_str(str_at(pod, "spec|containers|#0|readinessProbe|httpGet|path"), "/healthz", "readiness probe /healthz");
	is_str(str_at(pod, "spec|containers|#0|readinessProbe|httpGet|port"), "80", "probe on the model port");
	is_str(str_at(pod, "spec|containers|#0|ports|#0|containerPort"), "80", "container port");
	is_str(str_at(pod, "spec|restartPolicy"), "Never", "restartPolicy Never");
	is_str(str_at(pod, "spec|terminationGracePeriodSeconds"), "5", "grace period from the options");
	is_str(str_at(pod, "spec|affinity|podAffinity|preferredDuringSchedulingIgnoredDuringExecution|#0|podAffinityTerm|labelSelector|matchLabels|app.kubernetes.io/managed-by"),
	       "modelhub", "preferred pod affinity packs model pods");
	is_str(str_at(pod, "spec|affinity|podAffinity|preferredDuringSchedulingIgnoredDuringExecution|#0|podAffinityTerm|topologyKey"),
	       "kubernetes.io/hostname", "  per node");
	ok(str_at(pod, "spec|nodeSelector") == NULL, "no node selector unless configured");
	ok(str_at(pod, "spec|tolerations") == NULL, "no tolerations unless configured");
	ok(str_at(pod, "spec|containers|#0|imagePullPolicy") == NULL, "pull policy left to the cluster by default");
	json_object_put(pod);

	/* disabled memory limit (the runner passes 0), no cpu limit: nothing rendered */
	s.memory_limit_mib = 0;
	s.cpu_limit_m = 0;
	s.image_tag = "";
	s.model_id = "My_Model.v2";
	o.node_selector = "pool=models, zone=a";
	o.tolerations = "[{\"key\":\"gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]";
	o.affinity = "{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":{\"nodeSelectorTerms\":[]}},"
		     "\"podAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":[{\"weight\":1,\"podAffinityTerm\":{\"topologyKey\":\"x\"}}]}}";
	o.pull_policy = "IfNotPresent";
	pod = kube_pod_manifest(&s, &o, &err);
	ok(pod != NULL, "manifest with placement options");
	ok(str_at(pod, "spec|containers|#0|resources|limits|memory") == NULL, "no memory limit when disabled");
	ok(str_at(pod, "spec|containers|#0|resources|limits|cpu") == NULL, "no cpu limit when none (never \"Nonem\")");
	is_str(str_at(pod, "spec|containers|#0|resources|requests|memory"), "128Mi", "  memory request kept");
	is_str(str_at(pod, "spec|containers|#0|image"), "modelhub/eos3b5e", "empty tag: image as given");
	is_str(str_at(pod, "metadata|name"), "my-model-v2-42", "the name is a DNS-1123 label");
	is_str(str_at(pod, "metadata|labels|modelhub/model"), "My_Model.v2", "label value keeps valid characters");
	is_str(str_at(pod, "spec|nodeSelector|pool"), "models", "node selector from config");
	is_str(str_at(pod, "spec|nodeSelector|zone"), "a", "  second pair (space trimmed)");
	is_str(str_at(pod, "spec|tolerations|#0|key"), "gpu", "tolerations from config");
	ok(str_at(pod, "spec|affinity|nodeAffinity|requiredDuringSchedulingIgnoredDuringExecution") != NULL,
	   "node affinity from config kept");
	is_str(str_at(pod, "spec|affinity|podAffinity|preferredDuringSchedulingIgnoredDuringExecution|#0|podAffinityTerm|topologyKey"),
	       "x", "configured pod affinity kept");
	is_str(str_at(pod, "spec|affinity|podAffinity|preferredDuringSchedulingIgnoredDuringExecution|#1|podAffinityTerm|topologyKey"),
	       "kubernetes.io/hostname", "packing term appended");
	is_str(str_at(pod, "spec|containers|#0|imagePullPolicy"), "IfNotPresent", "image pull policy from config");
	json_object_put(pod);

	s = base_spec();
	s.image = "reg.example:5000/team/model:3.1";
	memset(&o, 0, sizeof o);
	o.grace_seconds = -1;
	pod = kube_pod_manifest(&s, &o, &err);
	is_str(str_at(pod, "spec|containers|#0|image"), "reg.example:5000/team/model:3.1",
	       "image that names its tag is not tagged twice (registry port is not a tag)");
	ok(str_at(pod, "spec|terminationGracePeriodSeconds") == NULL, "grace period unset when < 0");
	json_object_put(pod);
	s.image = "reg.example:5000/team/model";
	pod = kube_pod_manifest(&s, &o, &err);
	is_str(str_at(pod, "spec|containers|#0|image"), "reg.example:5000/team/model:1.2", "registry with port gets the tag");
	json_object_put(pod);

	/* bad inputs */
	s = base_spec();
	s.image = NULL;
	err = NULL;
	ok(kube_pod_manifest(&s, &o, &err) == NULL && err, "no image: refused (%s)", err ? err : "-");
	s = base_spec();
	s.port = 0;
	ok(kube_pod_manifest(&s, &o, &err) == NULL, "no port: refused");
	s = base_spec();
	s.memory_request_mib = 1024;
	ok(kube_pod_manifest(&s, &o, &err) == NULL, "memory request above limit: refused");
	s = base_spec();
	s.cpu_request_m = 2000;
	ok(kube_pod_manifest(&s, &o, &err) == NULL, "cpu request above limit: refused");
	s = base_spec();
	o.node_selector = "novalue";
	ok(kube_pod_manifest(&s, &o, &err) == NULL, "bad node selector: refused");
	o.node_selector = NULL;
	o.tolerations = "{\"not\":\"array\"}";
	ok(kube_pod_manifest(&s, &o, &err) == NULL, "tolerations not an array: refused");
	o.tolerations = NULL;
	o.affinity = "[1]";
	ok(kube_pod_manifest(&s, &o, &err) == NULL, "affinity not an object: refused");
	o.affinity = "{broken";
	ok(kube_pod_manifest(&s, &o, &err) == NULL, "affinity not JSON: refused");
}

static int parse(const char *json, struct cluster_pod *p)
{
	struct json_object *o = json_tokener_parse(json);
	int rc = kube_pod_parse(o, 0, p);

	json_object_put(o);
	return rc;
}

#define META "\"metadata\":{\"name\":\"m-1\",\"uid\":\"u1\",\"labels\":{\"modelhub/instance\":\"9\"}," \
	     "\"annotations\":{\"modelhub/server\":\"hub-a\",\"modelhub/request\":\"5\"}," \
	     "\"creationTimestamp\":\"2026-11-24T18:00:00Z\"}," \
	     "\"spec\":{\"nodeName\":\"node-a\",\"containers\":[{\"name\":\"model\",\"ports\":[{\"containerPort\":80}]}]}"

static void test_status(void)
{
	struct cluster_pod p;

	ok(parse("{" META ",\"status\":{\"phase\":\"Running\",\"podIP\":\"127.9.0.2\","
		 "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"2026-11-24T18:00:05.250Z\"}],"
		 "\"containerStatuses\":[{\"ready\":true,\"restartCount\":0,\"state\":{\"running\":{}}}]}}", &p) == 0,
	   "running pod parsed");
	is_int(p.state, CLUSTER_READY, "Running + Ready -> READY");
	is_str(p.address, "127.9.0.2:80", "address = pod IP + container port");
	is_str(p.node, "node-a", "node");
	is_str(p.server, "hub-a", "server annotation");
	is_str(p.request, "5", "request annotation");
	is_int(p.instance_id, 9, "instance label");
	is_int(p.created_ms, 1795543200000LL, "creationTimestamp parsed");
	is_int(p.ready_ms, 1795543205250LL, "ready time with fraction");

	parse("{" META ",\"status\":{\"phase\":\"Running\",\"podIP\":\"127.9.0.2\","
	      "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}],"
	      "\"containerStatuses\":[{\"ready\":false,\"restartCount\":0,\"state\":{\"running\":{}}}]}}", &p);
	is_int(p.state, CLUSTER_STARTING, "Running, not ready -> STARTING");

	parse("{" META ",\"status\":{\"phase\":\"Pending\",\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"False\","
	      "\"reason\":\"Unschedulable\",\"message\":\"0/3 nodes are available: 3 Insufficient cpu.\"}]}}", &p);
	is_int(p.state, CLUSTER_PENDING, "Pending + Unschedulable -> PENDING");
	ok(p.unschedulable, "  flagged unschedulable");
	is_str(p.reason, "Unschedulable", "  reason");
	ok(strstr(p.detail, "Insufficient cpu") != NULL, "  scheduler message kept");

	parse("{" META ",\"status\":{\"phase\":\"Pending\",\"containerStatuses\":[{\"ready\":false,\"restartCount\":0,"
	      "\"state\":{\"waiting\":{\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off pulling image\"}}}]}}", &p);
	is_int(p.state, CLUSTER_PENDING, "ImagePullBackOff -> PENDING (bounded by the start timeout)");
	ok(p.image_error, "  flagged image error");
	is_str(p.reason, "ImagePullBackOff", "  reason");
	parse("{" META ",\"status\":{\"phase\":\"Pending\",\"containerStatuses\":[{\"state\":{\"waiting\":{\"reason\":\"ErrImagePull\"}}}]}}", &p);
	ok(p.image_error && p.state == CLUSTER_PENDING, "ErrImagePull -> PENDING, image error");

	parse("{" META ",\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"ready\":false,\"restartCount\":3,"
	      "\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}},"
	      "\"lastState\":{\"terminated\":{\"exitCode\":1,\"reason\":\"Error\"}}}]}}", &p);
	is_int(p.state, CLUSTER_EXITED, "CrashLoopBackOff -> EXITED");
	is_int(p.term, CLUSTER_TERM_FAILED, "  FAILED");
	is_int(p.exit_code, 1, "  exit code from lastState");
	is_int(p.restarts, 3, "  restart count");

	parse("{" META ",\"status\":{\"phase\":\"Running\",\"containerStatuses\":[{\"ready\":true,\"restartCount\":1,"
	      "\"state\":{\"running\":{}},\"lastState\":{\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\"}}}]}}", &p);
	is_int(p.state, CLUSTER_EXITED, "restarted after OOMKilled (lastState) -> EXITED");
	is_int(p.term, CLUSTER_TERM_OOMKILLED, "  OOMKILLED");

	parse("{" META ",\"status\":{\"phase\":\"Failed\",\"containerStatuses\":[{\"restartCount\":0,"
	      "\"state\":{\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\"}}}]}}", &p);
	is_int(p.term, CLUSTER_TERM_OOMKILLED, "Failed + state.terminated OOMKilled -> OOMKILLED");
	is_int(p.exit_code, 137, "  exit code 137");
	is_str(p.reason, "OOMKilled", "  reason");

	parse("{" META ",\"status\":{\"phase\":\"Failed\",\"reason\":\"Evicted\",\"message\":\"low on memory\"}}", &p);
	is_int(p.state, CLUSTER_EXITED, "Failed (evicted, no container status) -> EXITED");
	is_int(p.term, CLUSTER_TERM_FAILED, "  FAILED");
	is_str(p.reason, "Evicted", "  reason from status.reason");

	parse("{" META ",\"status\":{\"phase\":\"Failed\",\"containerStatuses\":[{\"state\":{\"terminated\":{\"exitCode\":2,\"reason\":\"Error\"}}}]}}", &p);
	ok(p.state == CLUSTER_EXITED && p.term == CLUSTER_TERM_FAILED && p.exit_code == 2, "Failed with exit 2 -> FAILED");

	parse("{" META ",\"status\":{\"phase\":\"Succeeded\",\"containerStatuses\":[{\"state\":{\"terminated\":{\"exitCode\":0,\"reason\":\"Completed\"}}}]}}", &p);
	ok(p.state == CLUSTER_EXITED && p.term == CLUSTER_TERM_COMPLETED, "Succeeded -> COMPLETED");

	parse("{\"metadata\":{\"name\":\"m-1\",\"deletionTimestamp\":\"2026-11-24T18:01:00Z\"},"
	      "\"status\":{\"phase\":\"Running\",\"podIP\":\"127.9.0.2\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}", &p);
	ok(p.deleting, "deletionTimestamp -> deleting");
	ok(p.state == CLUSTER_EXITED && p.term == CLUSTER_TERM_FAILED, "  EXITED FAILED (never READY while being deleted)");

	/* nulls everywhere */
	ok(parse("{\"metadata\":{\"name\":\"m-2\",\"labels\":null,\"annotations\":null,\"uid\":null,"
		 "\"creationTimestamp\":null,\"deletionTimestamp\":null},\"spec\":null,"
		 "\"status\":{\"phase\":null,\"podIP\":null,\"conditions\":null,\"containerStatuses\":null}}", &p) == 0,
	   "nulls everywhere: parsed");
	is_int(p.state, CLUSTER_PENDING, "  PENDING");
	ok(!p.deleting && !p.address[0] && p.instance_id == 0 && p.exit_code == -1, "  nothing invented");
	ok(parse("{\"metadata\":{\"name\":\"m-3\"},\"status\":{\"containerStatuses\":[null,{}],"
		 "\"conditions\":[null,{\"type\":null}]}}", &p) == 0 && p.state == CLUSTER_PENDING,
	   "null array members: PENDING");
	ok(parse("{\"metadata\":{\"name\":\"m-4\"},\"status\":{\"phase\":\"Running\","
		 "\"containerStatuses\":[{\"state\":{\"running\":{}},\"ready\":true}]}}", &p) == 0 &&
	   p.state == CLUSTER_STARTING, "ready but no pod IP yet: STARTING (no address to use)");
	ok(parse("{\"metadata\":{\"name\":null}}", &p) < 0, "no name: refused");
	ok(parse("[1,2]", &p) < 0, "not an object: refused");
	ok(kube_pod_parse(NULL, 0, &p) < 0, "NULL: refused");
	{
		struct json_object *o = json_tokener_parse("{" META ",\"status\":{\"phase\":\"Running\",\"podIP\":\"127.9.0.2\"}}");
		kube_pod_parse(o, 10000, &p);
		is_str(p.address, "127.9.0.2:10080", "port offset added (simulator without root)");
		json_object_put(o);
	}
}

static void test_helpers(void)
{
	char b[64];

	is_int(kube_time_ms("1970-01-01T00:00:01Z"), 1000, "epoch + 1 s");
	is_int(kube_time_ms("garbage"), 0, "malformed time -> 0");
	is_int(kube_time_ms(NULL), 0, "NULL time -> 0");
	kube_dns_name("--Abc__D--", b, sizeof b);
	is_str(b, "abc--d", "DNS name trimmed and lowered");
	kube_dns_name("___", b, sizeof b);
	is_str(b, "model", "nothing usable -> model");
}

int main(void)
{
	test_manifest();
	test_status();
	test_helpers();
	return done_testing();
}
