-- wrk script: the Kore.ai erasure call of an allowed ordinary user.
-- The JWT comes from the environment (made by bench/load.sh).
wrk.method = "DELETE"
wrk.path = "/kore/api/public/bot/eraseUsersData"
wrk.headers["content-type"] = "application/json"
wrk.headers["auth"] = os.getenv("KORE_JWT")
wrk.body = '{"userIds":["u-ordinary-0001"],"botIds":["st-1"],"RemoveDataFromAllBots":false}'
