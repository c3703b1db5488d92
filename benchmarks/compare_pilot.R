# R side of benchmarks/compare_pilot.py: the same work as phb-eval's MI ANCOVA on the same data.
# mice per outcome (PMM, m imputations, maxit iterations; site, arm and covariates as predictors) + lm per imputation
# + sandwich::vcovCL(cluster = ~site, type = "HC1") + mice::pool.scalar(n = G, k = 1) per score.
# Usage: Rscript benchmarks/compare_pilot.R DATA.csv M ITERATIONS SCORE [SCORE ...]
# Prints one JSON object: {"seconds": ..., "estimates": {score: {estimate, se, df}}}
suppressMessages({library(mice); library(sandwich); library(jsonlite)})
args <- commandArgs(TRUE)
path <- args[1]; m <- as.integer(args[2]); maxit <- as.integer(args[3]); scores <- args[-(1:3)]
d <- read.csv(path, stringsAsFactors = FALSE)
for (v in c("site", "sex", "condition")) d[[v]] <- factor(d[[v]], levels = sort(unique(d[[v]]), method = "radix"))
preds <- c("phb", "site", "age", "sex", "condition")
start <- proc.time()[["elapsed"]]
G <- length(unique(d$site))
est <- list()
for (s in scores) {
  # one imputation model per outcome (its baseline and follow-up), as phb-eval does
  imp <- mice(d[, c(preds, paste0(s, c("_t0", "_t1")))], m = m, maxit = maxit, method = "pmm",
              printFlag = FALSE, seed = 20120601)
  form <- as.formula(paste0(s, "_t1 ~ phb + ", s, "_t0 + age + sex + condition"))
  Q <- U <- numeric(m)
  for (i in seq_len(m)) {
    fit <- lm(form, data = complete(imp, i))
    Q[i] <- coef(fit)[["phb"]]
    U[i] <- vcovCL(fit, cluster = ~site, type = "HC1")["phb", "phb"]
  }
  p <- pool.scalar(Q, U, n = G, k = 1)
  est[[s]] <- list(estimate = p$qbar, se = sqrt(p$t), df = p$df)
}
seconds <- proc.time()[["elapsed"]] - start
cat(toJSON(list(seconds = seconds, estimates = est), auto_unbox = TRUE, digits = NA), "\n")
