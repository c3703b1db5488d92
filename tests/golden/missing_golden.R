# Golden values for tests/test_missing.py: Rubin's rules with Barnard-Rubin df, as mice pools them.
# Input:  tests/golden/missing_golden_data.csv (mice long format; written by missing_golden_make_data.py)
# Output: tests/golden/missing_golden.json
#  - "cr1": ANCOVA with CR1 (vcovCL HC1) errors per imputation, pooled by mice::pool.scalar with
#           n = G, k = 1 (complete-data df = G - 1, the CR1 t df); CI and p from t(df).
#  - "model_based": mice::pool(with(imp, lm(...))) with its default dfcom (n - k) and with dfcom = G - 1.
# Run from anywhere: Rscript tests/golden/missing_golden.R
suppressMessages({library(mice); library(sandwich); library(jsonlite)})
args <- commandArgs(FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
long <- read.csv(file.path(here, "missing_golden_data.csv"), stringsAsFactors = FALSE, check.names = FALSE)
for (v in c("condition", "sex", "site")) long[[v]] <- factor(long[[v]], levels = sort(unique(long[[v]]), method = "radix"))
imp <- as.mids(long, .imp = ".imp", .id = ".id")
form <- y_t1 ~ phb + y_t0 + age + sex + condition
G <- length(unique(long$site))

Q <- U <- numeric(imp$m)
for (i in seq_len(imp$m)) {
  d <- complete(imp, i)
  fit <- lm(form, data = d)
  Q[i] <- coef(fit)[["phb"]]
  U[i] <- vcovCL(fit, cluster = ~site, type = "HC1")["phb", "phb"]
}
ps <- pool.scalar(Q, U, n = G, k = 1)
se <- sqrt(ps$t)
cr1 <- list(Q = Q, U = U, m = ps$m, qbar = ps$qbar, ubar = ps$ubar, b = ps$b, t = ps$t, df = ps$df,
            riv = ps$r, lambda = (1 + 1 / ps$m) * ps$b / ps$t, fmi = ps$fmi, se = se, dfcom = G - 1,
            ci_low = ps$qbar - qt(0.975, ps$df) * se, ci_high = ps$qbar + qt(0.975, ps$df) * se,
            p_value = 2 * pt(-abs(ps$qbar / se), ps$df), n_clusters = G)

fits <- with(imp, lm(y_t1 ~ phb + y_t0 + age + sex + condition))
model_based <- function(dfcom) {
  pl <- if (is.null(dfcom)) pool(fits) else pool(fits, dfcom = dfcom)
  p <- pl$pooled[pl$pooled$term == "phb", ]
  s <- summary(pl, conf.int = TRUE, conf.level = 0.90)
  s <- s[s$term == "phb", ]
  list(estimate = p$estimate, ubar = p$ubar, b = p$b, t = p$t, dfcom = p$dfcom, df = p$df, riv = p$riv,
       lambda = p$lambda, fmi = p$fmi, se = s$std.error, p_value = s$p.value,
       ci_low_90 = s[["5 %"]], ci_high_90 = s[["95 %"]])
}
res <- list(source = paste(R.version.string, "; mice", packageVersion("mice"), "; sandwich", packageVersion("sandwich")),
            cr1 = cr1, model_based_default = model_based(NULL), model_based_dfcom_g1 = model_based(G - 1))
write_json(res, file.path(here, "missing_golden.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
