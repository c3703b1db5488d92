# Golden values for phb_eval/service_use.py (tests/test_service_use.py).
#
# Regenerate (from the repository root):  Rscript tests/golden/service_use_models.R
# Writes tests/golden/service_use_models_data.csv (the fixed input, simulated here with a fixed seed)
# and tests/golden/service_use_models.json (estimates from MASS::glm.nb, glm(poisson), sandwich::vcovCL
# type "HC1" by site, pscl::zeroinfl and pscl::hurdle). Rerunning reproduces both files exactly.
suppressPackageStartupMessages({
  library(MASS); library(sandwich); library(pscl); library(jsonlite)
})
here <- "tests/golden"

# ---- fixed dataset: 16 sites x 30 people, site-level heterogeneity, deaths with and without a date ----
set.seed(20240525)
n_site <- 16; per_site <- 30; n <- n_site * per_site
site <- sprintf("S%02d", rep(seq_len(n_site), each = per_site))
site_eff <- rnorm(n_site, 0, 0.35)[rep(seq_len(n_site), each = per_site)]
phb <- rep(c(1L, 0L), length.out = n)
age <- round(25 + 60 * runif(n), 1)
sex <- ifelse(runif(n) < 0.55, "female", "male")
condition <- sample(c("chc", "copd", "diabetes", "mental_health"), n, replace = TRUE)
cond_eff <- c(chc = 0.3, copd = 0.1, diabetes = -0.2, mental_health = 0)[condition]
died <- as.integer(runif(n) < 0.09)
days_alive <- ifelse(died == 1, sample(20:360, n, replace = TRUE), 365L)
has_date <- died == 1 & runif(n) < 0.65
exposure <- ifelse(died == 1 & has_date, days_alive / 365, 1)
exposure[died == 1 & !has_date] <- NA

gp_pre <- rnbinom(n, mu = exp(1.4 + 0.5 * cond_eff + site_eff), size = 2)
mu_gp <- exp(0.9 - 0.25 * phb + 0.35 * log1p(gp_pre) + 0.006 * (age - 55) + cond_eff + site_eff)
gp_post <- rnbinom(n, mu = mu_gp * ifelse(is.na(exposure), 1, exposure), size = 1.8)

adm_pre <- rnbinom(n, mu = exp(-0.2 + cond_eff + 0.5 * site_eff), size = 1.2) * (runif(n) > 0.35)
mu_adm <- exp(0.6 - 0.35 * phb + 0.45 * log1p(adm_pre) + 0.01 * (age - 55) + cond_eff + site_eff)
structural_zero <- runif(n) < plogis(0.3 - 1.2 * log1p(adm_pre) + 0.6 * phb)
adm_post <- ifelse(structural_zero, 0, rnbinom(n, mu = mu_adm * ifelse(is.na(exposure), 1, exposure), size = 1.5))

gp_post[is.na(exposure)] <- NA
adm_post[is.na(exposure)] <- NA
data <- data.frame(participant_id = sprintf("P%03d", seq_len(n)), site = site, phb = phb,
                   group = ifelse(phb == 1, "phb", "control"), age = age, sex = sex, condition = condition,
                   died = died, exposure_post_years = round(exposure, 6),
                   gp_consultations_pre = gp_pre, gp_consultations_post = gp_post,
                   inpatient_admissions_pre = adm_pre, inpatient_admissions_post = adm_post)
write.csv(data, file.path(here, "service_use_models_data.csv"), row.names = FALSE, na = "")

# ---- models, read back from the CSV exactly as Python reads it ----
d0 <- read.csv(file.path(here, "service_use_models_data.csv"), stringsAsFactors = TRUE)
vec <- function(x) as.list(x)  # named list -> JSON object

fit_service <- function(service) {
  d <- d0
  d$y <- d[[paste0(service, "_post")]]
  d$lpre <- log1p(d[[paste0(service, "_pre")]])
  d$lexp <- log(d$exposure_post_years)
  d <- d[complete.cases(d[, c("y", "lpre", "lexp", "phb", "age", "sex", "condition", "site")]), ]
  out <- list(n = nrow(d), n_phb = sum(d$phb == 1), n_control = sum(d$phb == 0),
              zeros_observed = sum(d$y == 0))
  f <- y ~ phb + lpre + age + sex + condition + offset(lexp)

  gcomp <- function(beta, V, X1, X0) {   # mean difference in events per person-year, exposure 1
    m1 <- exp(drop(X1 %*% beta)); m0 <- exp(drop(X0 %*% beta))
    g <- colMeans(m1 * X1) - colMeans(m0 * X0)
    list(diff = mean(m1) - mean(m0), se = sqrt(drop(t(g) %*% V %*% g)))
  }
  X <- model.matrix(~ phb + lpre + age + sex + condition, d)
  X1 <- X; X1[, "phb"] <- 1; X0 <- X; X0[, "phb"] <- 0

  nb <- glm.nb(f, data = d, control = glm.control(epsilon = 1e-12, maxit = 100))
  Vnb <- vcovCL(nb, cluster = ~site, type = "HC1")
  g <- gcomp(coef(nb), Vnb, X1, X0)
  out$negbin <- list(coef = vec(coef(nb)), se_cr1 = vec(sqrt(diag(Vnb))), theta = nb$theta,
                     loglik = as.numeric(logLik(nb)), aic = AIC(nb),
                     zeros_predicted = sum(dnbinom(0, mu = fitted(nb), size = nb$theta)),
                     marginal_diff = g$diff, marginal_diff_se = g$se)

  po <- glm(f, data = d, family = poisson, control = glm.control(epsilon = 1e-12, maxit = 100))
  Vpo <- vcovCL(po, cluster = ~site, type = "HC1")
  g <- gcomp(coef(po), Vpo, X1, X0)
  out$poisson <- list(coef = vec(coef(po)), se_cr1 = vec(sqrt(diag(Vpo))),
                      loglik = as.numeric(logLik(po)), aic = AIC(po),
                      zeros_predicted = sum(dpois(0, fitted(po))),
                      marginal_diff = g$diff, marginal_diff_se = g$se)

  # Two-part formula: the exposure offset enters the count component only; both parts have the same regressors.
  fz <- y ~ phb + lpre + age + sex + condition + offset(lexp) | phb + lpre + age + sex + condition
  ctl <- zeroinfl.control(reltol = 1e-12, maxit = 10000)
  zi <- zeroinfl(fz, data = d, dist = "negbin", control = ctl)
  cr1 <- function(fit) {  # vcovCL over count and zero coefficients (theta is not in pscl's estfun)
    V <- tryCatch(vcovCL(fit, cluster = d$site, type = "HC1"), error = function(e) NULL)
    if (is.null(V)) return(list(count = NULL, zero = NULL))
    se <- sqrt(pmax(diag(V), 0))
    list(count = vec(se[grepl("^count_", names(se))]), zero = vec(se[grepl("^zero_", names(se))]))
  }
  out$zinb <- list(coef_count = vec(coef(zi, "count")), coef_zero = vec(coef(zi, "zero")),
                   se_count = vec(sqrt(diag(vcov(zi, "count")))), se_zero = vec(sqrt(diag(vcov(zi, "zero")))),
                   se_cr1_count = cr1(zi)$count, se_cr1_zero = cr1(zi)$zero,
                   theta = zi$theta, loglik = as.numeric(logLik(zi)), aic = AIC(zi),
                   zeros_predicted = sum(predict(zi, type = "prob")[, 1]))

  hctl <- hurdle.control(reltol = 1e-12, maxit = 10000)
  hu <- hurdle(fz, data = d, dist = "negbin", zero.dist = "binomial", control = hctl)
  out$hurdle_negbin <- list(coef_count = vec(coef(hu, "count")), coef_zero = vec(coef(hu, "zero")),
                            se_count = vec(sqrt(diag(vcov(hu, "count")))), se_zero = vec(sqrt(diag(vcov(hu, "zero")))),
                            se_cr1_count = cr1(hu)$count, se_cr1_zero = cr1(hu)$zero,
                            theta = hu$theta, loglik = as.numeric(logLik(hu)), aic = AIC(hu),
                            zeros_predicted = sum(predict(hu, type = "prob")[, 1]))
  out
}

golden <- list(
  provenance = list(
    script = "tests/golden/service_use_models.R", r = R.version.string,
    packages = list(MASS = as.character(packageVersion("MASS")), sandwich = as.character(packageVersion("sandwich")),
                    pscl = as.character(packageVersion("pscl"))),
    notes = paste("glm.nb/glm with vcovCL(cluster=~site, type='HC1'); zeroinfl/hurdle(dist='negbin',",
                  "zero.dist='binomial') with model-based SEs; offset log(exposure_post_years) in the count part;",
                  "marginal difference by g-computation at exposure 1 with the delta method on the CR1 covariance")),
  gp_consultations = fit_service("gp_consultations"),
  inpatient_admissions = fit_service("inpatient_admissions"))
write_json(golden, file.path(here, "service_use_models.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
