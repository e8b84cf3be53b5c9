/* SPDX-License-Identifier: MIT */
/* api_misc.c -- /healthz, /readyz, /metrics and signed file downloads. */
#include "server/internal.h"
#include "core/alloc.h"
#include "route/gateway.h"
#include "store/store.h"

#include <string.h>

enum MHD_Result
srv_api_health(struct srv_req *r, const char *tail)
{
    return srv_json(r, 200, json_pack("{s:s,s:s}", "status", "ok", "version", IG_VERSION));
}

enum MHD_Result
srv_api_ready(struct srv_req *r, const char *tail)
{
    /* Ready means the store answers: a job accepted now would be kept. */
    struct store_job sj;
    struct ig_error err = {0};
    if (r->srv->deps.store &&
        store_job_get(r->srv->deps.store, "job_readiness_probe", NULL, &sj, &err) != 0 &&
        strcmp(err.code, "not_found") != 0)
        return srv_error(r, &err);
    return srv_json(r, 200, json_pack("{s:s,s:i}", "status", "ready", "jobs_active",
                                      r->srv->deps.gw ? route_gateway_active(r->srv->deps.gw)
                                                      : 0));
}

enum MHD_Result
srv_api_metrics(struct srv_req *r, const char *tail)
{
    struct ig_buf out = {0};
    if (ig_metrics_render(r->srv->deps.metrics, &out) != 0) {
        ig_buf_free(&out);
        return srv_errorf(r, 500, "out_of_memory", "out of memory rendering metrics");
    }
    size_t len;
    char *data = ig_buf_steal(&out, &len);
    return srv_bytes(r, 200, "text/plain; version=0.0.4", data, len, NULL);
}

enum MHD_Result
srv_api_files(struct srv_req *r, const char *hex)
{
    const char *tenant = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "tenant");
    const char *exp = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "exp");
    const char *sig = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "sig");
    if (!srv_check_file_sig(r->srv, hex, tenant, exp, sig))
        return srv_errorf(r, 403, "bad_signature",
                          "the file URL is not signed for this file, or it has expired");
    struct ig_buf b = {0};
    struct ig_error err = {0};
    if (store_blob_get(r->srv->deps.store, hex, &b, &err) != 0) {
        ig_buf_free(&b);
        return srv_error(r, &err);
    }
    size_t len;
    char *data = ig_buf_steal(&b, &len);
    enum img_format f = img_sniff(data, len);
    static const char *const headers[] = {"Cache-Control", "private, max-age=3600", NULL};
    return srv_bytes(r, 200, img_format_mime(f), data, len, headers);
}
