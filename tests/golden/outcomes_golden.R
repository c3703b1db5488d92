# Golden values for tests/test_outcomes.py: OLS / logit with CR1 cluster-robust errors by site.
# Reference implementation: lm / glm + sandwich::vcovCL(cluster = ~site, type = "HC1") +
# lmtest::coeftest / coefci with df = G - 1 (number of sites - 1).
# Input:  tests/golden/outcomes_golden_data.csv (written by outcomes_golden_make_data.py)
# Output: tests/golden/outcomes_golden.json
# Run from anywhere: Rscript tests/golden/outcomes_golden.R
suppressMessages({library(sandwich); library(lmtest); library(jsonlite)})
args <- commandArgs(FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
d <- read.csv(file.path(here, "outcomes_golden_data.csv"), stringsAsFactors = FALSE)
# treatment coding with the first level in C-locale (code point) order as reference, as phb-eval
for (v in c("condition", "sex")) d[[v]] <- factor(d[[v]], levels = sort(unique(d[[v]]), method = "radix"))

cr1 <- function(case, fit, data, conf = 0.95, exp_est = FALSE) {
  G <- length(unique(data$site))
  V <- vcovCL(fit, cluster = ~site, type = "HC1")
  ct <- coeftest(fit, vcov. = V, df = G - 1)
  ci <- coefci(fit, vcov. = V, df = G - 1, level = conf)
  est <- unname(ct["phb", 1]); lo <- unname(ci["phb", 1]); hi <- unname(ci["phb", 2])
  if (exp_est) { est <- exp(est); lo <- exp(lo); hi <- exp(hi) }
  list(case = case, estimate = est, se = unname(ct["phb", 2]), ci_low = lo, ci_high = hi,
       p_value = unname(ct["phb", 4]), df = G - 1, n_clusters = G, nobs = nrow(data),
       n_phb = sum(data$phb == 1), n_control = sum(data$phb == 0), conf_level = conf,
       coef = as.list(coef(fit)), se_all = as.list(sqrt(diag(V))))
}
cc <- function(vars) d[complete.cases(d[, vars]), ]
covs <- "age + sex + condition"
# IRLS run to full convergence so the sandwich bread (built from the final working weights) is exact
tight <- glm.control(epsilon = 1e-16, maxit = 100)
out <- list()

a <- cc(c("y_t1", "y_t0", "phb", "site", "age", "sex", "condition"))
fit <- lm(as.formula(paste("y_t1 ~ phb + y_t0 +", covs)), data = a)
out[[length(out) + 1]] <- cr1("ancova_95", fit, a, 0.95)
out[[length(out) + 1]] <- cr1("ancova_90", fit, a, 0.90)

fit <- lm(as.formula(paste("I(y_t1 - y_t0) ~ phb +", covs)), data = a)
out[[length(out) + 1]] <- cr1("did_95", fit, a, 0.95)

b <- cc(c("b_t1", "b_t0", "phb", "site", "age", "sex", "condition"))
fit <- lm(as.formula(paste("b_t1 ~ phb + b_t0 +", covs)), data = b)
out[[length(out) + 1]] <- cr1("binary_rd_95", fit, b, 0.95)
fit <- glm(as.formula(paste("b_t1 ~ phb + b_t0 +", covs)), family = binomial, data = b, control = tight)
out[[length(out) + 1]] <- cr1("binary_or_95", fit, b, 0.95, exp_est = TRUE)

m <- cc(c("died", "phb", "site", "age", "sex", "condition"))
fit <- lm(as.formula(paste("died ~ phb +", covs)), data = m)
out[[length(out) + 1]] <- cr1("mortality_rd_95", fit, m, 0.95)
fit <- glm(as.formula(paste("died ~ phb +", covs)), family = binomial, data = m, control = tight)
out[[length(out) + 1]] <- cr1("mortality_or_95", fit, m, 0.95, exp_est = TRUE)

# Propensity score (logistic on covariates and the baseline score) and ATT weights, then weighted ANCOVA
p <- cc(c("phb", "age", "sex", "condition", "y_t0"))
ps_fit <- glm(phb ~ age + sex + condition + y_t0, family = binomial, data = p, control = tight)
p$ps <- fitted(ps_fit)
p$w_att <- ifelse(p$phb == 1, 1, p$ps / (1 - p$ps))
p$w_overlap <- ifelse(p$phb == 1, 1 - p$ps, p$ps)
pa <- p[complete.cases(p[, c("y_t1")]), ]
fit <- lm(as.formula(paste("y_t1 ~ phb + y_t0 +", covs)), data = pa, weights = w_att)
out[[length(out) + 1]] <- cr1("ipw_att_ancova_95", fit, pa, 0.95)
fit <- lm(as.formula(paste("y_t1 ~ phb + y_t0 +", covs)), data = pa, weights = w_overlap)
out[[length(out) + 1]] <- cr1("ipw_overlap_ancova_95", fit, pa, 0.95)
pb <- p[complete.cases(p[, c("b_t1")]), ]
fit <- suppressWarnings(glm(as.formula(paste("b_t1 ~ phb + b_t0 +", covs)), family = binomial, data = pb,
                            weights = w_att, control = tight))
out[[length(out) + 1]] <- cr1("ipw_att_or_95", fit, pb, 0.95, exp_est = TRUE)

res <- list(source = paste(R.version.string, "; sandwich", packageVersion("sandwich"),
                           "; lmtest", packageVersion("lmtest")),
            cases = out,
            propensity = list(coef = as.list(coef(ps_fit)), se = as.list(sqrt(diag(vcov(ps_fit)))),
                              participant_id = p$participant_id, ps = p$ps, w_att = p$w_att,
                              w_overlap = p$w_overlap))
write_json(res, file.path(here, "outcomes_golden.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
