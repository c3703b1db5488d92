# Golden values for tests/test_balance.py: standardised mean differences written out by hand in R.
# SMD = (mean_phb - mean_control) / sqrt((s2_phb + s2_control) / 2) for continuous variables (s2 with n - 1);
# for a binary variable or a categorical level, s2 = p(1 - p). Weighted SMD: weighted means over the SAME
# unweighted denominator. Weighted variance: sum(w (x - mw)^2) * sum(w) / (sum(w)^2 - sum(w^2)).
# Weights: ATT from glm(phb ~ age + sex + condition + y_t0, binomial); ESS = sum(w)^2 / sum(w^2).
# Input:  tests/golden/outcomes_golden_data.csv (shared with the outcome tests)
# Output: tests/golden/balance_golden.json
# Run from anywhere: Rscript tests/golden/balance_golden.R
suppressMessages(library(jsonlite))
args <- commandArgs(FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
d <- read.csv(file.path(here, "outcomes_golden_data.csv"), stringsAsFactors = FALSE)
for (v in c("condition", "sex")) d[[v]] <- factor(d[[v]], levels = sort(unique(as.character(d[[v]])), method = "radix"))
cc <- complete.cases(d[, c("phb", "age", "sex", "condition", "y_t0")])
fit <- glm(phb ~ age + sex + condition + y_t0, family = binomial, data = d[cc, ],
           control = glm.control(epsilon = 1e-16, maxit = 100))
d$w <- NA_real_
ps <- fitted(fit)
d$w[cc] <- ifelse(d$phb[cc] == 1, 1, ps / (1 - ps))

wvar <- function(x, w) { mw <- sum(w * x) / sum(w); sum(w * (x - mw)^2) * sum(w) / (sum(w)^2 - sum(w^2)) }
one <- function(variable, level, x, obs, continuous) {
  t1 <- obs & d$phb == 1; t0 <- obs & d$phb == 0
  w1 <- t1 & !is.na(d$w); w0 <- t0 & !is.na(d$w)
  m1 <- mean(x[t1]); m0 <- mean(x[t0])
  if (continuous) { v1 <- var(x[t1]); v0 <- var(x[t0]) } else { v1 <- m1 * (1 - m1); v0 <- m0 * (1 - m0) }
  den <- sqrt((v1 + v0) / 2)
  wm1 <- weighted.mean(x[w1], d$w[w1]); wm0 <- weighted.mean(x[w0], d$w[w0])
  list(variable = variable, level = level, smd = (m1 - m0) / den, smd_weighted = (wm1 - wm0) / den,
       variance_ratio = if (continuous) v1 / v0 else NA,
       variance_ratio_weighted = if (continuous) wvar(x[w1], d$w[w1]) / wvar(x[w0], d$w[w0]) else NA,
       mean_phb_weighted = wm1, mean_control_weighted = wm0)
}
rows <- list(one("age", NA, d$age, !is.na(d$age), TRUE),
             one("y_t0", NA, d$y_t0, !is.na(d$y_t0), TRUE),
             one("b_t0", "1", as.numeric(d$b_t0 == 1), !is.na(d$b_t0), FALSE))
for (v in c("sex", "condition")) for (l in levels(d[[v]]))
  rows[[length(rows) + 1]] <- one(v, l, as.numeric(d[[v]] == l), !is.na(d[[v]]), FALSE)
ess <- function(w) sum(w)^2 / sum(w^2)
res <- list(source = R.version.string, rows = rows,
            ess_phb = ess(d$w[!is.na(d$w) & d$phb == 1]), ess_control = ess(d$w[!is.na(d$w) & d$phb == 0]))
write_json(res, file.path(here, "balance_golden.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null")
