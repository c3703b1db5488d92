# CR2 golden values for the outcome estimators as the modelling core wires them (tests/models/test_cr2_wiring.py):
# the cases of outcomes_golden.R with clubSandwich::vcovCR(type = "CR2") and coef_test(test = "Satterthwaite");
# interval = estimate -/+ qt(df_Satterthwaite) * se. Propensity weights are those outcomes_golden.R exported.
# Input:  tests/golden/outcomes_golden_data.csv, tests/golden/outcomes_golden.json (weights)
# Output: tests/golden/outcomes_cr2_golden.json.  Run from anywhere: Rscript tests/golden/outcomes_cr2_golden.R
suppressMessages({library(clubSandwich); library(jsonlite)})
args <- commandArgs(FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
d <- read.csv(file.path(here, "outcomes_golden_data.csv"), stringsAsFactors = FALSE)
for (v in c("condition", "sex")) d[[v]] <- factor(d[[v]], levels = sort(unique(d[[v]]), method = "radix"))
ps <- fromJSON(file.path(here, "outcomes_golden.json"))$propensity
d$w_att <- ps$w_att[match(d$participant_id, ps$participant_id)]
tight <- glm.control(epsilon = 1e-16, maxit = 100)
cr2 <- function(case, fit, data, conf = 0.95, exp_est = FALSE) {
  V <- vcovCR(fit, cluster = data$site, type = "CR2")
  ct <- coef_test(fit, vcov = V, test = "Satterthwaite")
  i <- which(rownames(ct) == "phb" | ct$Coef == "phb")
  est <- ct$beta[i]; se <- ct$SE[i]; df <- ct$df_Satt[i]
  q <- qt(0.5 + conf / 2, df); lo <- est - q * se; hi <- est + q * se
  if (exp_est) { est <- exp(est); lo <- exp(lo); hi <- exp(hi) }
  list(case = case, estimate = est, se = se, df = df, p_value = ct$p_Satt[i], ci_low = lo, ci_high = hi,
       n_clusters = length(unique(data$site)))
}
cc <- function(vars) d[complete.cases(d[, vars]), ]
covs <- "age + sex + condition"
out <- list()
a <- cc(c("y_t1", "y_t0", "phb", "site", "age", "sex", "condition"))
out[[1]] <- cr2("ancova_95", lm(as.formula(paste("y_t1 ~ phb + y_t0 +", covs)), data = a), a)
out[[2]] <- cr2("did_95", lm(as.formula(paste("I(y_t1 - y_t0) ~ phb +", covs)), data = a), a)
b <- cc(c("b_t1", "b_t0", "phb", "site", "age", "sex", "condition"))
out[[3]] <- cr2("binary_rd_95", lm(as.formula(paste("b_t1 ~ phb + b_t0 +", covs)), data = b), b)
out[[4]] <- cr2("binary_or_95", glm(as.formula(paste("b_t1 ~ phb + b_t0 +", covs)), family = binomial, data = b,
                                    control = tight), b, exp_est = TRUE)
pa <- cc(c("y_t1", "y_t0", "phb", "site", "age", "sex", "condition", "w_att"))
out[[5]] <- cr2("ipw_att_ancova_95", lm(as.formula(paste("y_t1 ~ phb + y_t0 +", covs)), data = pa,
                                        weights = w_att), pa)
res <- list(source = paste(R.version.string, "; clubSandwich", packageVersion("clubSandwich")), cases = out)
write_json(res, file.path(here, "outcomes_cr2_golden.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
