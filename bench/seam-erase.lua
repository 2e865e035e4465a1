-- wrk script: a Seam "delete customer data" call naming ten customers.
-- The token and the body come from the environment (set by bench/load.sh).
wrk.method = "POST"
wrk.path = "/seam/customers/delete_data"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("SEAM_TOKEN")
wrk.body = os.getenv("SEAM_BODY")
