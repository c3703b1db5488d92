# R side of benchmarks/cea_bootstrap.py: boot::boot of the overall-stratum regression pair
# (effect: scrqol_t1 ~ phb + scrqol_t0 + age + sex + condition; cost: cost_total ~ phb + cost_indirect_pre
# + age + sex + condition), resampling people stratified by arm, as a typical user writes it with lm().
# Usage: Rscript benchmarks/cea_bootstrap.R cohort.csv R seed   -> prints {"reps": R, "seconds": s} (JSON)
suppressPackageStartupMessages({library(boot); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE, na.strings = c("", "NA"))
R <- as.integer(args[2])
set.seed(as.integer(args[3]))
d <- d[complete.cases(d[, c("phb", "scrqol_t1", "scrqol_t0", "cost_total", "cost_indirect_pre",
                            "age", "sex", "condition")]), ]
stat <- function(data, i) {
  dd <- data[i, ]
  c(coef(lm(scrqol_t1 ~ phb + scrqol_t0 + age + sex + condition, data = dd))[["phb"]],
    coef(lm(cost_total ~ phb + cost_indirect_pre + age + sex + condition, data = dd))[["phb"]])
}
elapsed <- system.time(b <- boot(d, stat, R = R, strata = d$phb))[["elapsed"]]
cat(toJSON(list(reps = R, seconds = elapsed), auto_unbox = TRUE, digits = NA), "\n")
