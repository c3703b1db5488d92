# Golden values for phb_eval.cea: per-replicate OLS estimates on the SAME bootstrap rows that phb-eval
# draws, the full-sample estimates, jackknife influence values, and boot::boot.ci percentile and BCa
# intervals on those replicates.
#
# Inputs (made by tests/golden/cea_make_data.py): cea_data.csv, cea_indices.csv (one line per group and
# replicate; the resampled people as 1-based row numbers of cea_data.csv).
# Output: cea_golden.json. Run from the repository root:  Rscript tests/golden/cea_golden.R
#
# Models (lm; rows with a missing value in the model's variables dropped, aliased columns dropped):
#   effect  scrqol_t1 ~ <PHB indicator(s)> + scrqol_t0 + <covariates>
#   ASCOT-years  (scrqol_t0 + scrqol_t1) / 2 ~ <PHB indicator(s)> + scrqol_t0 + <covariates> (AUC over 1 year)
# NMB per replicate: lambda * ASCOT-years (or QALY) coefficient - cost_total coefficient
#   qaly    qaly ~ <PHB indicator(s)> + eq5d_index_t0 + <covariates>
#   costs   cost_total | cost_direct | cost_indirect ~ <PHB indicator(s)> + cost_indirect_pre + <covariates>
# Groups: "all" (phb; strata = arm), "budget_band" (controls and PHB holders with a band; one indicator per
# band, controls the reference; strata = control / each band), "condition=chc" (people with chc; phb;
# covariates age + sex; strata = arm).
# BCa: boot.ci(type = "bca") with L = empinf(type = "jack") (boot's usual jackknife, stratified), which is
# what phb-eval computes in closed form. boot.ci's default L (regression on the bootstrap array) is an
# approximation of the same influence values; its acceleration on R's own replicates is recorded as a_reg.

suppressPackageStartupMessages({library(boot); library(jsonlite)})
here <- "tests/golden"
d <- read.csv(file.path(here, "cea_data.csv"), stringsAsFactors = FALSE, na.strings = c("", "NA"))
idx <- read.csv(file.path(here, "cea_indices.csv"), stringsAsFactors = FALSE)
B <- max(idx$replicate)
lambdas <- c(20000, 30000)
conf <- 0.95

# C-locale factor levels, first level the reference (as phb-eval)
d$ascot_years <- (d$scrqol_t0 + d$scrqol_t1) / 2
d$sex <- factor(d$sex, levels = sort(unique(d$sex), method = "radix"))
d$condition <- factor(d$condition, levels = sort(unique(d$condition), method = "radix"))
d$ind_lo <- as.numeric(d$phb == 1 & !is.na(d$budget_band) & d$budget_band == "<1000")
d$ind_hi <- as.numeric(d$phb == 1 & !is.na(d$budget_band) & d$budget_band == ">=1000")

coef_of <- function(formula, data, terms) {
  cf <- coef(lm(formula, data = data))
  unname(cf[terms])
}

stat_models <- function(dd, ind, covs, labels) {
  rhs <- paste(c(ind, covs), collapse = " + ")
  f <- function(y, base) as.formula(paste(y, "~", rhs, "+", base))
  e  <- coef_of(f("scrqol_t1", "scrqol_t0"), dd, ind)
  a  <- coef_of(f("ascot_years", "scrqol_t0"), dd, ind)
  q  <- coef_of(f("qaly", "eq5d_index_t0"), dd, ind)
  ct <- coef_of(f("cost_total", "cost_indirect_pre"), dd, ind)
  cd <- coef_of(f("cost_direct", "cost_indirect_pre"), dd, ind)
  ci <- coef_of(f("cost_indirect", "cost_indirect_pre"), dd, ind)
  out <- c()
  for (j in seq_along(ind)) {
    v <- c(e[j], a[j], q[j], ct[j], cd[j], ci[j], lambdas * a[j] - ct[j], lambdas * q[j] - ct[j])
    names(v) <- paste0(c("d_effect", "d_ascot", "d_qaly", "d_cost", "d_cost_direct", "d_cost_indirect",
                         paste0("nmb_ascot_years_", lambdas), paste0("nmb_qaly_", lambdas)), "|", labels[j])
    out <- c(out, v)
  }
  out
}

complete <- complete.cases(d[, c("phb", "scrqol_t1", "scrqol_t0", "cost_total", "cost_indirect_pre",
                                 "age", "sex", "condition")])
groups <- list(
  all = list(rows = which(complete), ind = "phb", covs = c("age", "sex", "condition"), labels = "all",
             strata = function(dd) dd$phb),
  budget_band = list(rows = which(complete & (d$phb == 0 | !is.na(d$budget_band))), ind = c("ind_lo", "ind_hi"),
                     covs = c("age", "sex", "condition"),
                     labels = c("budget_band=<1000", "budget_band=>=1000"),
                     strata = function(dd) ifelse(dd$phb == 1, dd$budget_band, "control")),
  "condition=chc" = list(rows = which(complete & d$condition == "chc"), ind = "phb", covs = c("age", "sex"),
                         labels = "condition=chc", strata = function(dd) dd$phb)
)

out <- list(B = B, conf = conf, lambdas = lambdas, R_version = R.version.string,
            boot_version = as.character(packageVersion("boot")), groups = list())
set.seed(1)
for (key in names(groups)) {
  g <- groups[[key]]
  dsub <- d[g$rows, ]
  dsub$condition <- droplevels(dsub$condition)
  st <- g$strata(dsub)
  stat <- function(data, i) stat_models(data[i, ], g$ind, g$covs, g$labels)
  t0 <- stat(dsub, seq_len(nrow(dsub)))
  # per-replicate estimates on phb-eval's rows
  lines <- idx[idx$group == key, ]
  lines <- lines[order(lines$replicate), ]
  tmat <- t(vapply(strsplit(lines$rows, " "), function(r) {
    rr <- as.integer(r)
    dd <- d[rr, ]
    dd$condition <- factor(as.character(dd$condition), levels = levels(dsub$condition))
    stat_models(dd, g$ind, g$covs, g$labels)
  }, numeric(length(t0))))
  # a boot object over the same person set (R's own replicates), used as the container for boot.ci and
  # for the regression-based influence values
  bt <- boot(dsub, stat, R = B, strata = factor(st))
  res <- list(n = nrow(dsub), stats = names(t0), t0 = as.list(t0), t = list(), L = list(), perc = list(),
              bca = list(), a_jack = list(), a_reg = list())
  for (k in seq_along(t0)) {
    nm <- names(t0)[k]
    L <- empinf(data = dsub, statistic = stat, stype = "i", type = "jack", strata = factor(st), index = k)
    ci <- boot.ci(bt, conf = conf, type = c("perc", "bca"), index = k, t0 = t0[k], t = tmat[, k], L = L)
    Lreg <- empinf(bt, index = k, type = "reg")
    res$t[[nm]] <- tmat[, k]
    res$L[[nm]] <- L
    res$perc[[nm]] <- unname(ci$percent[1, 4:5])
    res$bca[[nm]] <- unname(ci$bca[1, 4:5])
    res$a_jack[[nm]] <- sum(L^3) / (6 * sum(L^2)^1.5)
    res$a_reg[[nm]] <- sum(Lreg^3) / (6 * sum(Lreg^2)^1.5)
  }
  out$groups[[key]] <- res
}
write_json(out, file.path(here, "cea_golden.json"), digits = NA, auto_unbox = TRUE, pretty = FALSE)
