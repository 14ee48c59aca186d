-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "Tier" AS ENUM ('free', 'basic', 'pro', 'enterprise');

-- CreateEnum
CREATE TYPE "JobStatus" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "BatchStatus" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'PARTIAL', 'FAILED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "TemporalMode" AS ENUM ('FORWARD', 'PORTAL', 'BRANCHING', 'DIRECTORIAL', 'CYCLICAL');

-- CreateEnum
CREATE TYPE "StopReason" AS ENUM ('FAIL_FAST', 'BUDGET_EXHAUSTED', 'CANCELLED_BY_USER', 'QUOTA_EXHAUSTED');

-- CreateEnum
CREATE TYPE "LedgerKind" AS ENUM ('CHARGE', 'ADJUSTMENT');

-- CreateTable
CREATE TABLE "users" (
    "id" TEXT NOT NULL,
    "tier" "Tier" NOT NULL DEFAULT 'free',
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "name" TEXT,
    "prefix" TEXT NOT NULL,
    "key_hash" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMP(3),
    "revoked_at" TIMESTAMP(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "batches" (
    "id" TEXT NOT NULL,
    "owner_id" TEXT NOT NULL,
    "status" "BatchStatus" NOT NULL DEFAULT 'PENDING',
    "priority" INTEGER NOT NULL,
    "fail_fast" BOOLEAN NOT NULL,
    "parallel_jobs" INTEGER NOT NULL,
    "budget_cap_micros" BIGINT,
    "estimated_cost_micros" BIGINT NOT NULL,
    "total_jobs" INTEGER NOT NULL,
    "stop_reason" "StopReason",
    "error_message" TEXT,
    "cancel_reason" TEXT,
    "metadata" JSONB,
    "request_id" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMP(3),
    "completed_at" TIMESTAMP(3),

    CONSTRAINT "batches_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "simulation_jobs" (
    "id" TEXT NOT NULL,
    "owner_id" TEXT NOT NULL,
    "batch_id" TEXT,
    "batch_index" INTEGER,
    "status" "JobStatus" NOT NULL DEFAULT 'PENDING',
    "priority" INTEGER NOT NULL DEFAULT 50,
    "template_id" TEXT,
    "description" TEXT,
    "entity_count" INTEGER NOT NULL,
    "timepoint_count" INTEGER NOT NULL,
    "temporal_mode" "TemporalMode" NOT NULL,
    "config" JSONB NOT NULL DEFAULT '{}',
    "generate_summaries" BOOLEAN NOT NULL DEFAULT true,
    "export_formats" TEXT[],
    "metadata" JSONB,
    "estimated_cost_micros" BIGINT NOT NULL,
    "cost_micros" BIGINT NOT NULL DEFAULT 0,
    "tokens_used" BIGINT NOT NULL DEFAULT 0,
    "progress_percent" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "current_step" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "error_message" TEXT,
    "cancel_reason" TEXT,
    "cancel_requested" BOOLEAN NOT NULL DEFAULT false,
    "released_at" TIMESTAMP(3),
    "admitted_period" TEXT NOT NULL,
    "request_id" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMP(3),
    "completed_at" TIMESTAMP(3),

    CONSTRAINT "simulation_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "simulation_results" (
    "job_id" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "result" JSONB NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "simulation_results_pkey" PRIMARY KEY ("job_id")
);

-- CreateTable
CREATE TABLE "simulation_exports" (
    "job_id" TEXT NOT NULL,
    "format" TEXT NOT NULL,
    "content_type" TEXT NOT NULL,
    "content" BYTEA NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "simulation_exports_pkey" PRIMARY KEY ("job_id","format")
);

-- CreateTable
CREATE TABLE "ledger_entries" (
    "id" BIGSERIAL NOT NULL,
    "user_id" TEXT NOT NULL,
    "period" TEXT NOT NULL,
    "kind" "LedgerKind" NOT NULL,
    "job_id" TEXT,
    "batch_id" TEXT,
    "attempt" INTEGER,
    "cost_micros" BIGINT NOT NULL DEFAULT 0,
    "tokens" BIGINT NOT NULL DEFAULT 0,
    "api_calls" BIGINT NOT NULL DEFAULT 0,
    "simulations" INTEGER NOT NULL DEFAULT 0,
    "reason" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ledger_entries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "usage_periods" (
    "user_id" TEXT NOT NULL,
    "period" TEXT NOT NULL,
    "api_calls" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "usage_periods_pkey" PRIMARY KEY ("user_id","period")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys"("key_hash");

-- CreateIndex
CREATE INDEX "api_keys_user_id_idx" ON "api_keys"("user_id");

-- CreateIndex
CREATE INDEX "batches_owner_id_created_at_idx" ON "batches"("owner_id", "created_at");

-- CreateIndex
CREATE INDEX "batches_owner_id_status_idx" ON "batches"("owner_id", "status");

-- CreateIndex
CREATE INDEX "batches_status_idx" ON "batches"("status");

-- CreateIndex
CREATE INDEX "simulation_jobs_owner_id_created_at_idx" ON "simulation_jobs"("owner_id", "created_at");

-- CreateIndex
CREATE INDEX "simulation_jobs_owner_id_status_idx" ON "simulation_jobs"("owner_id", "status");

-- CreateIndex
CREATE INDEX "simulation_jobs_owner_id_admitted_period_idx" ON "simulation_jobs"("owner_id", "admitted_period");

-- CreateIndex
CREATE INDEX "simulation_jobs_batch_id_batch_index_idx" ON "simulation_jobs"("batch_id", "batch_index");

-- CreateIndex
CREATE INDEX "simulation_jobs_status_released_at_idx" ON "simulation_jobs"("status", "released_at");

-- CreateIndex
CREATE INDEX "ledger_entries_user_id_period_idx" ON "ledger_entries"("user_id", "period");

-- CreateIndex
CREATE INDEX "ledger_entries_batch_id_idx" ON "ledger_entries"("batch_id");

-- CreateIndex
CREATE UNIQUE INDEX "ledger_entries_job_id_attempt_key" ON "ledger_entries"("job_id", "attempt");

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

